//! The pattern matcher (src/pattern.rs): never panics, the prefiltering Matcher agrees with
//! `matches`, the literal prefix/suffix/`as_literal` are what the pattern really forces, and
//! `matches` agrees with a second, independent implementation of Redis's rules (below).
//!
//! Input: the first two bytes (little-endian, modulo the rest's length + 1) say how many of the
//! following bytes are the pattern; the remaining bytes are the key. Both are binary.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rediscache::pattern::{as_literal, literal_prefix, literal_suffix, matches, Matcher};

fuzz_target!(|data: &[u8]| {
    let [a, b, rest @ ..] = data else {
        return;
    };
    let split = usize::from(u16::from_le_bytes([*a, *b])) % (rest.len() + 1);
    let (pattern, key) = rest.split_at(split);

    let m = matches(pattern, key);
    assert_eq!(Matcher::new(pattern).matches(key), m, "Matcher disagrees");

    let tokens = reference::tokenize(pattern);
    let prefix = literal_prefix(pattern);
    let suffix = literal_suffix(pattern);
    assert_eq!(
        prefix,
        reference::leading_literals(&tokens),
        "literal_prefix"
    );
    assert_eq!(
        suffix,
        reference::trailing_literals(&tokens),
        "literal_suffix"
    );
    if m {
        assert!(key.starts_with(&prefix) && key.ends_with(&suffix));
    }

    match as_literal(pattern) {
        Some(lit) => {
            assert!(tokens.iter().all(|t| matches!(t, reference::Token::Lit(_))));
            assert!(
                matches(pattern, &lit),
                "a literal pattern matches its literal"
            );
            assert_eq!(
                m,
                key == lit.as_slice(),
                "a literal pattern matches only its literal"
            );
        }
        None => assert!(
            tokens
                .iter()
                .any(|t| !matches!(t, reference::Token::Lit(_))),
            "as_literal said None to a pattern of literals"
        ),
    }

    // Redis answers "no match" past 1000 nested `*`: the reference does not model that.
    if reference::star_runs(&tokens) <= 1000 {
        assert_eq!(
            m,
            reference::matches(pattern, key),
            "differs from the reference: pattern {:?} key {:?}",
            String::from_utf8_lossy(pattern),
            String::from_utf8_lossy(key)
        );
    }
});

/// Redis's glob rules (util.c `stringmatchlen`, case-sensitive, as KEYS uses it), written
/// separately from src/pattern.rs: the pattern is first read into tokens, where all of the
/// quirks live, then matched by dynamic programming over (token, byte) pairs.
///
/// The quirks: `\x` is a literal x, a `\` ending the pattern (or a class) is a literal `\`;
/// a class `[...]` ends at the first unescaped `]` or at the end of the pattern, a leading `^`
/// negates it, `a-z` is a range whose bounds are compared as signed chars (x86 `char`) and
/// swapped when reversed, `\x` inside a class is the byte x; `[]` matches nothing, `[^]` any
/// byte. An empty key matches only the empty pattern, except the lone `*` of `KEYS *`, which
/// matches every key.
mod reference {
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Token {
        Star,
        Any,
        Lit(u8),
        Class { negate: bool, items: Vec<Item> },
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    pub enum Item {
        Byte(u8),
        Range(i8, i8),
    }

    pub fn tokenize(p: &[u8]) -> Vec<Token> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < p.len() {
            match p[i] {
                b'*' => {
                    out.push(Token::Star);
                    i += 1;
                }
                b'?' => {
                    out.push(Token::Any);
                    i += 1;
                }
                b'\\' if i + 1 < p.len() => {
                    out.push(Token::Lit(p[i + 1]));
                    i += 2;
                }
                b'[' => {
                    i += 1;
                    let negate = p.get(i) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let mut items = Vec::new();
                    while i < p.len() {
                        if p[i] == b'\\' && i + 1 < p.len() {
                            items.push(Item::Byte(p[i + 1]));
                            i += 2;
                        } else if p[i] == b']' {
                            i += 1;
                            break;
                        } else if i + 2 < p.len() && p[i + 1] == b'-' {
                            let (a, b) = (p[i] as i8, p[i + 2] as i8);
                            items.push(Item::Range(a.min(b), a.max(b)));
                            i += 3;
                        } else {
                            items.push(Item::Byte(p[i]));
                            i += 1;
                        }
                    }
                    out.push(Token::Class { negate, items });
                }
                c => {
                    out.push(Token::Lit(c));
                    i += 1;
                }
            }
        }
        out
    }

    fn one(t: &Token, c: u8) -> bool {
        match t {
            Token::Star => unreachable!(),
            Token::Any => true,
            Token::Lit(l) => *l == c,
            Token::Class { negate, items } => {
                let hit = items.iter().any(|it| match *it {
                    Item::Byte(b) => b == c,
                    Item::Range(lo, hi) => (lo..=hi).contains(&(c as i8)),
                });
                hit != *negate
            }
        }
    }

    pub fn matches(pattern: &[u8], key: &[u8]) -> bool {
        if pattern == b"*" {
            return true;
        }
        if key.is_empty() {
            return pattern.is_empty();
        }
        let tokens = tokenize(pattern);
        // ok[j]: the tokens read so far match key[..j].
        let mut ok = vec![false; key.len() + 1];
        ok[0] = true;
        for t in &tokens {
            let mut next = vec![false; key.len() + 1];
            if *t == Token::Star {
                let mut any = false;
                for j in 0..=key.len() {
                    any |= ok[j];
                    next[j] = any;
                }
            } else {
                for j in 0..key.len() {
                    next[j + 1] = ok[j] && one(t, key[j]);
                }
            }
            ok = next;
        }
        ok[key.len()]
    }

    pub fn star_runs(tokens: &[Token]) -> usize {
        let mut runs = 0;
        let mut prev_star = false;
        for t in tokens {
            let star = *t == Token::Star;
            if star && !prev_star {
                runs += 1;
            }
            prev_star = star;
        }
        runs
    }

    pub fn leading_literals(tokens: &[Token]) -> Vec<u8> {
        tokens
            .iter()
            .map_while(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect()
    }

    pub fn trailing_literals(tokens: &[Token]) -> Vec<u8> {
        let mut out: Vec<u8> = tokens
            .iter()
            .rev()
            .map_while(|t| match t {
                Token::Lit(c) => Some(*c),
                _ => None,
            })
            .collect();
        out.reverse();
        out
    }
}
