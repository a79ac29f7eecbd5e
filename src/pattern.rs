//! The glob language of `KEYS` and `SCAN MATCH`, byte for byte as redis-server matches it
//! (`stringmatchlen` in util.c, case-sensitive), plus what the indexes need to narrow a scan:
//! the literal prefix of a pattern, and whether a pattern names exactly one key.

/// Deeper `*` nesting than this is answered "no match", as newer servers do, so a hostile
/// pattern cannot exhaust the stack.
const MAX_NESTING: u32 = 1000;

/// True when `string` matches `pattern` under Redis's rules. A lone `*` matches every key,
/// the empty one included, as `KEYS *` does.
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    if pattern == b"*" {
        return true;
    }
    let mut skip_longer = false;
    match_from(pattern, string, &mut skip_longer, 0)
}

/// A byte of the pattern, or NUL past its end: redis-server reads the sds terminator there.
fn at(pattern: &[u8], i: usize) -> u8 {
    pattern.get(i).copied().unwrap_or(0)
}

fn match_from(pat: &[u8], s: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    let (mut p, mut i) = (0usize, 0usize);
    while p < pat.len() && i < s.len() {
        match pat[p] {
            b'*' => {
                while p + 1 < pat.len() && pat[p + 1] == b'*' {
                    p += 1;
                }
                if p + 1 == pat.len() {
                    return true;
                }
                while i < s.len() {
                    if match_from(&pat[p + 1..], &s[i..], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    i += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => i += 1,
            b'[' => {
                p += 1;
                let negate = at(pat, p) == b'^';
                if negate {
                    p += 1;
                }
                let c = s[i];
                let mut hit = false;
                loop {
                    if at(pat, p) == b'\\' && pat.len() - p >= 2 {
                        p += 1;
                        if pat[p] == c {
                            hit = true;
                        }
                    } else if p < pat.len() && pat[p] == b']' {
                        break;
                    } else if p >= pat.len() {
                        // Unterminated class: the class ends with the pattern.
                        p -= 1;
                        break;
                    } else if pat.len() - p >= 3 && pat[p + 1] == b'-' {
                        // redis-server compares plain (signed) chars.
                        let (mut lo, mut hi) = (pat[p] as i8, pat[p + 2] as i8);
                        if lo > hi {
                            std::mem::swap(&mut lo, &mut hi);
                        }
                        p += 2;
                        if (lo..=hi).contains(&(c as i8)) {
                            hit = true;
                        }
                    } else if pat[p] == c {
                        hit = true;
                    }
                    p += 1;
                }
                if hit == negate {
                    return false;
                }
                i += 1;
            }
            b => {
                let literal = if b == b'\\' && pat.len() - p >= 2 {
                    p += 1;
                    pat[p]
                } else {
                    b
                };
                if literal != s[i] {
                    return false;
                }
                i += 1;
            }
        }
        p += 1;
        if i == s.len() {
            while p < pat.len() && pat[p] == b'*' {
                p += 1;
            }
            break;
        }
    }
    p >= pat.len() && i == s.len()
}

/// One piece of a pattern as `matches` reads it: a byte that must match itself (escapes
/// resolved), or anything else (`*`, `?`, a `[...]` class).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    Literal(u8),
    Wild,
}

fn tokens(pattern: &[u8]) -> impl Iterator<Item = Token> + '_ {
    let mut p = 0;
    std::iter::from_fn(move || {
        let token = match *pattern.get(p)? {
            b'*' | b'?' => {
                p += 1;
                Token::Wild
            }
            b'[' => {
                p = class_end(pattern, p + 1);
                Token::Wild
            }
            b'\\' if p + 1 < pattern.len() => {
                p += 2;
                Token::Literal(pattern[p - 1])
            }
            b => {
                p += 1;
                Token::Literal(b)
            }
        };
        Some(token)
    })
}

fn literal(token: Token) -> Option<u8> {
    match token {
        Token::Literal(b) => Some(b),
        Token::Wild => None,
    }
}

/// The bytes every matching string starts with.
pub fn literal_prefix(pattern: &[u8]) -> Vec<u8> {
    tokens(pattern).map_while(literal).collect()
}

/// The pattern that matches exactly `literal` (every special byte escaped).
pub fn escape(literal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(literal.len() + 2);
    for &b in literal {
        if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
            out.push(b'\\');
        }
        out.push(b);
    }
    out
}

/// The one string a pattern matches when it has no wildcard (escapes resolved), else None.
pub fn as_literal(pattern: &[u8]) -> Option<Vec<u8>> {
    tokens(pattern).map(literal).collect()
}

/// The bytes every matching string ends with: the literal run after the pattern's last
/// wildcard or class, escapes resolved.
pub fn literal_suffix(pattern: &[u8]) -> Vec<u8> {
    let mut suffix = Vec::new();
    for token in tokens(pattern) {
        match token {
            Token::Literal(b) => suffix.push(b),
            Token::Wild => suffix.clear(),
        }
    }
    suffix
}

/// The position after the class that starts at `p` (just past its `[`), as `matches` reads it.
fn class_end(pattern: &[u8], mut p: usize) -> usize {
    if at(pattern, p) == b'^' {
        p += 1;
    }
    loop {
        if p >= pattern.len() {
            return pattern.len();
        }
        if pattern[p] == b'\\' && pattern.len() - p >= 2 {
            p += 2;
        } else if pattern[p] == b']' {
            return p + 1;
        } else if pattern.len() - p >= 3 && pattern[p + 1] == b'-' {
            p += 3;
        } else {
            p += 1;
        }
    }
}

/// A pattern with its literal prefix and suffix, which reject most keys without running the
/// matcher (a leading `*` makes the matcher try every position of every key).
pub struct Matcher {
    pattern: Vec<u8>,
    prefix: Vec<u8>,
    suffix: Vec<u8>,
}

impl Matcher {
    pub fn new(pattern: &[u8]) -> Matcher {
        Matcher {
            pattern: pattern.to_vec(),
            prefix: literal_prefix(pattern),
            suffix: literal_suffix(pattern),
        }
    }

    pub fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    pub fn matches(&self, key: &[u8]) -> bool {
        if self.pattern.as_slice() == b"*" {
            return true;
        }
        key.starts_with(&self.prefix) && key.ends_with(&self.suffix) && matches(&self.pattern, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn wildcards() {
        assert!(m("*", ""));
        assert!(m("*", "abc"));
        assert!(m("a*", "abc"));
        assert!(!m("a*", "bac"));
        assert!(m("*c", "abc"));
        assert!(m("a*c", "ac"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "ac"));
        assert!(m("user:*:name", "user:42:name"));
        assert!(!m("user:*:name", "user:42:names"));
        assert!(!m("", "a"));
        assert!(m("", ""));
        assert!(!m("?", ""));
        assert!(m("a**", "a"));
        assert!(!m("**", ""), "only a lone * matches the empty key");
    }

    #[test]
    fn classes() {
        assert!(m("[abc]", "b"));
        assert!(!m("[abc]", "d"));
        assert!(m("[^abc]", "d"));
        assert!(!m("[^a]", "a"));
        assert!(m("[a-c]x", "bx"));
        assert!(m("[c-a]x", "bx"), "reversed ranges are swapped");
        assert!(m("[\\]]", "]"));
        assert!(m("[abc", "a"), "unterminated class ends with the pattern");
        assert!(!m("[abc", "ab"));
        assert!(!m("[a-]", "-"), "a-] is the range ]..a");
        assert!(m("[a-]", "^"));
    }

    #[test]
    fn escaped_literals_match_only_themselves() {
        for k in [&b"a*b?[c]\\d"[..], b"", b"plain", b"\\", b"[x"] {
            let p = escape(k);
            assert_eq!(as_literal(&p).as_deref(), Some(k));
            assert!(matches(&p, k));
        }
        assert!(!matches(&escape(b"a*"), b"ab"));
    }

    #[test]
    fn escapes() {
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("a\\", "a\\"), "a trailing backslash is literal");
        assert!(m("\\?", "?"));
    }

    #[test]
    fn signed_ranges_like_the_server() {
        // [a-\xff] swaps to [\xff-a] in signed chars: it matches \x00..a and \xff.
        assert!(matches(b"[a-\xff]", b"\xff"));
        assert!(matches(b"[a-\xff]", b"0"));
        assert!(!matches(b"[a-\xff]", b"b"));
    }

    #[test]
    fn hostile_patterns_end() {
        let key = vec![b'a'; 5000];
        assert!(!matches(b"*a*a*a*a*a*a*a*a*a*a*b", &key));
        let deep = "*a".repeat(5000) + "b";
        assert!(!matches(deep.as_bytes(), &key));
    }

    #[test]
    fn suffixes() {
        assert_eq!(literal_suffix(b"*:item:19999"), b":item:19999");
        assert_eq!(literal_suffix(b"a*b\\*"), b"b*");
        assert_eq!(literal_suffix(b"a[bc]d"), b"d");
        assert_eq!(literal_suffix(b"a[b\\]c]d"), b"d");
        assert_eq!(literal_suffix(b"a[bc"), b"");
        assert_eq!(literal_suffix(b"abc"), b"abc");
        assert_eq!(literal_suffix(b"a?"), b"");
    }

    /// Every string the matcher accepts ends with the suffix and starts with the prefix, over
    /// random patterns and strings from a small alphabet with every special character.
    #[test]
    fn prefix_and_suffix_never_reject_a_match() {
        let alphabet = b"ab*?[]^-\\";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for _ in 0..200_000 {
            let pat: Vec<u8> = (0..next(7))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            let key: Vec<u8> = (0..next(6))
                .map(|_| alphabet[next(alphabet.len())])
                .collect();
            if matches(&pat, &key) {
                assert!(
                    Matcher::new(&pat).matches(&key),
                    "{:?} {:?}",
                    String::from_utf8_lossy(&pat),
                    String::from_utf8_lossy(&key)
                );
            }
        }
    }

    #[test]
    fn prefixes_and_literals() {
        assert_eq!(literal_prefix(b"user:*"), b"user:");
        assert_eq!(literal_prefix(b"a\\*b*"), b"a*b");
        assert_eq!(literal_prefix(b"*x"), b"");
        assert_eq!(literal_prefix(b"ab[cd]"), b"ab");
        assert_eq!(as_literal(b"user:1"), Some(b"user:1".to_vec()));
        assert_eq!(as_literal(b"a\\*b"), Some(b"a*b".to_vec()));
        assert_eq!(as_literal(b"a*"), None);
        assert_eq!(as_literal(b"a?"), None);
        assert_eq!(as_literal(b"a\\"), Some(b"a\\".to_vec()));
    }
}
