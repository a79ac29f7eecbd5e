//! Command arguments parsed into typed values before anything is touched. Pure: no server.

use crate::error::ParseError;

/// Relative times (and stale windows) beyond this (ms, about 4,400 years) are refused, so
/// adding them to the clock can never overflow.
pub const MAX_TIME_MS: i64 = 1 << 47;
/// Absolute times beyond this are refused. Twice the relative bound: a write is replicated (and
/// rewritten to the AOF) as PXAT clock + relative time, which replicas and AOF loading must
/// accept for any clock before the year 6400.
pub const MAX_ABSOLUTE_MS: i64 = 2 * MAX_TIME_MS;
pub const MAX_LEASE_MS: i64 = 86_400_000;
pub const MAX_WAIT_MS: i64 = 3_600_000;
pub const MAX_COST_MS: i64 = 86_400_000;
/// TAGSCAN's COUNT is a hint; it never sizes more work than this.
pub const MAX_SCAN_COUNT: usize = 100_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// `cache.default-ttl`.
    Default,
    /// EX / PX, in ms from now.
    For(i64),
    /// EXAT / PXAT, Unix ms.
    Until(i64),
    /// Never stale by time, no key TTL.
    Persist,
}

#[derive(Debug, PartialEq, Eq)]
pub struct SetTagged<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub fresh: Freshness,
    /// STALE / PSTALE in ms; None: `cache.default-stale`.
    pub stale_ms: Option<i64>,
    pub cost_ms: i64,
    pub lease: Option<&'a [u8]>,
    pub keep_ttl: bool,
    /// Distinct, in the order first given.
    pub tags: Vec<&'a [u8]>,
    /// Where the `TAGS` word is among the arguments: replication passes the tail on as given.
    pub tags_at: Option<usize>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct GetOrMark<'a> {
    pub key: &'a [u8],
    pub lease_ms: Option<i64>,
    pub wait_ms: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Get<'a> {
    pub key: &'a [u8],
    pub with_meta: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Invalidate<'a> {
    pub pattern: &'a [u8],
    pub soft: bool,
    /// LOCAL: this node only, on a cluster.
    pub local: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum StatsQuery<'a> {
    Totals,
    Namespace(&'a [u8]),
    Namespaces,
    Reset,
}

#[derive(Debug, PartialEq, Eq)]
pub struct TagScan<'a> {
    pub tag: &'a [u8],
    pub cursor: u64,
    pub pattern: Option<&'a [u8]>,
    pub count: usize,
    /// LOCAL: this node only (and its own cursor), on a cluster.
    pub local: bool,
}

/// Redis's strict integer syntax (string2ll): optional '-', digits, no '+', no leading zeros,
/// no spaces.
pub fn parse_i64(arg: &[u8]) -> Result<i64, ParseError> {
    let digits = arg.strip_prefix(b"-").unwrap_or(arg);
    let canonical = !digits.is_empty()
        && digits.iter().all(u8::is_ascii_digit)
        && (digits[0] != b'0' || (digits.len() == 1 && digits.len() == arg.len()));
    if !canonical {
        return Err(ParseError::NotAnInteger);
    }
    // Accumulated negatively, so i64::MIN has room; any overflow is an error.
    let mut n: i64 = 0;
    for &d in digits {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_sub(i64::from(d - b'0')))
            .ok_or(ParseError::NotAnInteger)?;
    }
    if digits.len() == arg.len() {
        n.checked_neg().ok_or(ParseError::NotAnInteger)
    } else {
        Ok(n)
    }
}

fn eq(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// Cursor over option words and their values.
struct Options<'a, 'b> {
    args: &'b [&'a [u8]],
    at: usize,
}

impl<'a> Options<'a, '_> {
    fn next(&mut self) -> Option<&'a [u8]> {
        let arg = self.args.get(self.at).copied();
        self.at += 1;
        arg
    }

    fn value(&mut self) -> Result<&'a [u8], ParseError> {
        self.next().ok_or(ParseError::Syntax)
    }

    fn int(&mut self) -> Result<i64, ParseError> {
        parse_i64(self.value()?)
    }
}

fn once<T>(slot: &mut Option<T>, value: T) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::Syntax);
    }
    *slot = Some(value);
    Ok(())
}

fn positive_time(n: i64, unit_ms: i64, max_ms: i64) -> Result<i64, ParseError> {
    if n <= 0 || n > max_ms / unit_ms {
        return Err(ParseError::InvalidExpire);
    }
    Ok(n * unit_ms)
}

/// `key value [EX s|PX ms|EXAT s|PXAT ms|PERSIST] [STALE s|PSTALE ms] [COST ms] [LEASE token]
/// [KEEPTTL] [TAGS tag ...]` (arguments after the command name).
pub fn set_tagged<'a>(args: &[&'a [u8]], max_tags: usize) -> Result<SetTagged<'a>, ParseError> {
    let [key, value, rest @ ..] = args else {
        return Err(ParseError::Arity);
    };
    let mut opts = Options { args: rest, at: 0 };
    let mut fresh = None;
    let mut stale = None;
    let mut cost = None;
    let mut lease = None;
    let mut keep_ttl = None;
    let mut tags: Vec<&[u8]> = Vec::new();
    let mut tags_at = None;
    while let Some(word) = opts.next() {
        if eq(word, "EX") {
            let n = opts.int()?;
            once(
                &mut fresh,
                Freshness::For(positive_time(n, 1000, MAX_TIME_MS)?),
            )?;
        } else if eq(word, "PX") {
            let n = opts.int()?;
            once(
                &mut fresh,
                Freshness::For(positive_time(n, 1, MAX_TIME_MS)?),
            )?;
        } else if eq(word, "EXAT") {
            let n = opts.int()?;
            let at = positive_time(n, 1000, MAX_ABSOLUTE_MS)?;
            once(&mut fresh, Freshness::Until(at))?;
        } else if eq(word, "PXAT") {
            let n = opts.int()?;
            let at = positive_time(n, 1, MAX_ABSOLUTE_MS)?;
            once(&mut fresh, Freshness::Until(at))?;
        } else if eq(word, "PERSIST") {
            once(&mut fresh, Freshness::Persist)?;
        } else if eq(word, "STALE") || eq(word, "PSTALE") {
            let unit = if eq(word, "STALE") { 1000 } else { 1 };
            let n = opts.int()?;
            if n < 0 || n > MAX_TIME_MS / unit {
                return Err(ParseError::InvalidExpire);
            }
            once(&mut stale, n * unit)?;
        } else if eq(word, "COST") {
            let n = opts.int()?;
            if !(0..=MAX_COST_MS).contains(&n) {
                return Err(ParseError::NotAnInteger);
            }
            once(&mut cost, n)?;
        } else if eq(word, "LEASE") {
            let token = opts.value()?;
            once(&mut lease, token)?;
        } else if eq(word, "KEEPTTL") {
            once(&mut keep_ttl, true)?;
        } else if eq(word, "TAGS") {
            // Two arguments (key and value) come before `rest`.
            tags_at = Some(opts.at + 1);
            for tag in &rest[opts.at..] {
                if !tags.contains(tag) {
                    if tags.len() == max_tags {
                        return Err(ParseError::TooManyTags(max_tags));
                    }
                    tags.push(tag);
                }
            }
            break;
        } else {
            return Err(ParseError::Syntax);
        }
    }
    Ok(SetTagged {
        key,
        value,
        fresh: fresh.unwrap_or(Freshness::Default),
        stale_ms: stale,
        cost_ms: cost.unwrap_or(0),
        lease,
        keep_ttl: keep_ttl.unwrap_or(false),
        tags,
        tags_at,
    })
}

/// `key [LEASE ms] [WAIT ms]`.
pub fn get_or_mark<'a>(args: &[&'a [u8]]) -> Result<GetOrMark<'a>, ParseError> {
    let [key, rest @ ..] = args else {
        return Err(ParseError::Arity);
    };
    let mut opts = Options { args: rest, at: 0 };
    let mut lease = None;
    let mut wait = None;
    while let Some(word) = opts.next() {
        if eq(word, "LEASE") {
            let n = opts.int()?;
            if !(1..=MAX_LEASE_MS).contains(&n) {
                return Err(ParseError::InvalidLease);
            }
            once(&mut lease, n)?;
        } else if eq(word, "WAIT") {
            let n = opts.int()?;
            if !(0..=MAX_WAIT_MS).contains(&n) {
                return Err(ParseError::InvalidWait);
            }
            once(&mut wait, n)?;
        } else {
            return Err(ParseError::Syntax);
        }
    }
    Ok(GetOrMark {
        key,
        lease_ms: lease,
        wait_ms: wait.unwrap_or(0),
    })
}

/// `key [WITHMETA]`.
pub fn get<'a>(args: &[&'a [u8]]) -> Result<Get<'a>, ParseError> {
    match args {
        [key] => Ok(Get {
            key,
            with_meta: false,
        }),
        [key, word] if eq(word, "WITHMETA") => Ok(Get {
            key,
            with_meta: true,
        }),
        [_, _] => Err(ParseError::Syntax),
        _ => Err(ParseError::Arity),
    }
}

/// `key`: the one argument of CACHE.TAGS.
pub fn key_only<'a>(args: &[&'a [u8]]) -> Result<&'a [u8], ParseError> {
    match args {
        [key] => Ok(key),
        _ => Err(ParseError::Arity),
    }
}

/// `pattern [SOFT] [LOCAL]` (also `tag [SOFT] [LOCAL]`), the words in any order.
pub fn invalidate<'a>(args: &[&'a [u8]]) -> Result<Invalidate<'a>, ParseError> {
    let [pattern, words @ ..] = args else {
        return Err(ParseError::Arity);
    };
    if words.len() > 2 {
        return Err(ParseError::Arity);
    }
    let (mut soft, mut local) = (None, None);
    for word in words {
        if eq(word, "SOFT") {
            once(&mut soft, true)?;
        } else if eq(word, "LOCAL") {
            once(&mut local, true)?;
        } else {
            return Err(ParseError::Syntax);
        }
    }
    Ok(Invalidate {
        pattern,
        soft: soft.unwrap_or(false),
        local: local.unwrap_or(false),
    })
}

/// `[NAMESPACE name | NAMESPACES | RESET] [LOCAL]`; true with LOCAL. A namespace named
/// LOCAL stays a namespace (`NAMESPACE LOCAL`).
pub fn stats<'a>(args: &[&'a [u8]]) -> Result<(StatsQuery<'a>, bool), ParseError> {
    if let [rest @ .., last] = args {
        if eq(last, "LOCAL") {
            if let Ok(query) = stats_scope(rest) {
                return Ok((query, true));
            }
        }
    }
    stats_scope(args).map(|q| (q, false))
}

fn stats_scope<'a>(args: &[&'a [u8]]) -> Result<StatsQuery<'a>, ParseError> {
    match args {
        [] => Ok(StatsQuery::Totals),
        [word] if eq(word, "NAMESPACES") => Ok(StatsQuery::Namespaces),
        [word] if eq(word, "RESET") => Ok(StatsQuery::Reset),
        [word, name] if eq(word, "NAMESPACE") => Ok(StatsQuery::Namespace(name)),
        _ => Err(ParseError::Syntax),
    }
}

/// `tag cursor [MATCH pattern] [COUNT count] [LOCAL]`.
pub fn tag_scan<'a>(args: &[&'a [u8]]) -> Result<TagScan<'a>, ParseError> {
    let [tag, cursor, rest @ ..] = args else {
        return Err(ParseError::Arity);
    };
    let cursor = std::str::from_utf8(cursor)
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ParseError::InvalidCursor)?;
    let mut opts = Options { args: rest, at: 0 };
    let mut pattern = None;
    let mut count = None;
    let mut local = None;
    while let Some(word) = opts.next() {
        if eq(word, "LOCAL") {
            once(&mut local, true)?;
        } else if eq(word, "MATCH") {
            let p = opts.value()?;
            once(&mut pattern, p)?;
        } else if eq(word, "COUNT") {
            let n = opts.int()?;
            if n < 1 {
                return Err(ParseError::Syntax);
            }
            once(
                &mut count,
                usize::try_from(n)
                    .unwrap_or(MAX_SCAN_COUNT)
                    .min(MAX_SCAN_COUNT),
            )?;
        } else {
            return Err(ParseError::Syntax);
        }
    }
    Ok(TagScan {
        tag,
        cursor,
        pattern,
        count: count.unwrap_or(10),
        local: local.unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> Vec<&[u8]> {
        s.split(' ').map(str::as_bytes).collect()
    }

    #[test]
    fn integers_are_strict() {
        assert_eq!(parse_i64(b"10"), Ok(10));
        assert_eq!(parse_i64(b"-5"), Ok(-5));
        assert_eq!(parse_i64(b"0"), Ok(0));
        assert_eq!(parse_i64(b"9223372036854775807"), Ok(i64::MAX));
        assert_eq!(parse_i64(b"-9223372036854775808"), Ok(i64::MIN));
        for bad in [
            "9223372036854775808",
            "-9223372036854775809",
            "",
            "+1",
            "01",
            "-0",
            "1.5",
            " 1",
            "1e3",
            "-",
            "99999999999999999999",
        ] {
            assert_eq!(
                parse_i64(bad.as_bytes()),
                Err(ParseError::NotAnInteger),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn set_tagged_full() {
        let s = set_tagged(&a("k v ex 10 stale 5 cost 200 lease abc TAGS t u t"), 64).unwrap();
        assert_eq!(s.fresh, Freshness::For(10_000));
        assert_eq!(s.stale_ms, Some(5000));
        assert_eq!(s.cost_ms, 200);
        assert_eq!(s.lease, Some(b"abc".as_slice()));
        assert_eq!(s.tags, vec![b"t".as_slice(), b"u"]);
        assert_eq!(s.tags_at, Some(10), "the TAGS word");
        let s = set_tagged(&a("k v PXAT 1700000000000 PSTALE 10 KEEPTTL"), 64).unwrap();
        assert_eq!(s.fresh, Freshness::Until(1_700_000_000_000));
        assert!(s.keep_ttl);
        assert_eq!(
            set_tagged(&a("k v persist"), 64).unwrap().fresh,
            Freshness::Persist
        );
        assert_eq!(set_tagged(&a("k v TAGS"), 64).unwrap().tags.len(), 0);
        assert_eq!(
            set_tagged(&a("k v TAGS EX 5"), 64).unwrap().tags.len(),
            2,
            "TAGS takes the rest"
        );
    }

    #[test]
    fn set_tagged_errors() {
        assert_eq!(set_tagged(&a("k"), 64), Err(ParseError::Arity));
        assert_eq!(set_tagged(&a("k v EX"), 64), Err(ParseError::Syntax));
        assert_eq!(set_tagged(&a("k v EX 1 PX 5"), 64), Err(ParseError::Syntax));
        assert_eq!(set_tagged(&a("k v EX 1 EX 1"), 64), Err(ParseError::Syntax));
        assert_eq!(set_tagged(&a("k v BOGUS"), 64), Err(ParseError::Syntax));
        assert_eq!(
            set_tagged(&a("k v EX 0"), 64),
            Err(ParseError::InvalidExpire)
        );
        assert_eq!(
            set_tagged(&a("k v PX -1"), 64),
            Err(ParseError::InvalidExpire)
        );
        assert_eq!(
            set_tagged(&a("k v EX abc"), 64),
            Err(ParseError::NotAnInteger)
        );
        assert_eq!(
            set_tagged(&a("k v STALE -1"), 64),
            Err(ParseError::InvalidExpire)
        );
        assert_eq!(set_tagged(&a("k v STALE 0"), 64).unwrap().stale_ms, Some(0));
        assert_eq!(
            set_tagged(&a("k v COST -1"), 64),
            Err(ParseError::NotAnInteger)
        );
        assert_eq!(
            set_tagged(&a("k v EX 9223372036854775807"), 64),
            Err(ParseError::InvalidExpire)
        );
        assert_eq!(
            set_tagged(&a("k v TAGS a b c"), 2),
            Err(ParseError::TooManyTags(2))
        );
        assert!(
            set_tagged(&a("k v TAGS a a b"), 2).is_ok(),
            "duplicates count once"
        );
    }

    /// A write is replicated and rewritten to the AOF as PXAT clock + relative time: the
    /// largest EX / PX (found by fuzz/fuzz_targets/args.rs) must come back through the parser on
    /// a replica, or the replica silently lacks the key.
    #[test]
    fn largest_relative_times_replicate_as_absolute_ones() {
        let now: i64 = 1_700_000_000_000;
        for (cmd, unit) in [("PX 140737488355328", 1), ("EX 140737488355", 1000)] {
            let Ok(SetTagged {
                fresh: Freshness::For(ms),
                ..
            }) = set_tagged(&a(&format!("k v {cmd}")), 64)
            else {
                panic!("{cmd} refused");
            };
            assert_eq!(ms, MAX_TIME_MS / unit * unit);
            let at = (now + ms).to_string();
            let replicated = [&b"k"[..], b"v", b"PXAT", at.as_bytes()];
            assert_eq!(
                set_tagged(&replicated, 64).map(|c| c.fresh),
                Ok(Freshness::Until(now + ms))
            );
        }
        let max = MAX_ABSOLUTE_MS.to_string();
        assert!(set_tagged(&a(&format!("k v PXAT {max}")), 64).is_ok());
        let over = (MAX_ABSOLUTE_MS + 1).to_string();
        assert_eq!(
            set_tagged(&a(&format!("k v PXAT {over}")), 64),
            Err(ParseError::InvalidExpire)
        );
        let over = (MAX_ABSOLUTE_MS / 1000 + 1).to_string();
        assert_eq!(
            set_tagged(&a(&format!("k v EXAT {over}")), 64),
            Err(ParseError::InvalidExpire)
        );
    }

    #[test]
    fn get_or_mark_options() {
        let g = get_or_mark(&a("k LEASE 500 wait 0")).unwrap();
        assert_eq!((g.lease_ms, g.wait_ms), (Some(500), 0));
        assert_eq!(get_or_mark(&a("k LEASE 0")), Err(ParseError::InvalidLease));
        assert_eq!(get_or_mark(&a("k WAIT -1")), Err(ParseError::InvalidWait));
        assert_eq!(get_or_mark(&a("k WAIT x")), Err(ParseError::NotAnInteger));
        assert_eq!(get_or_mark(&a("k FOO")), Err(ParseError::Syntax));
        assert_eq!(get_or_mark(&[]), Err(ParseError::Arity));
    }

    #[test]
    fn other_commands() {
        assert!(invalidate(&a("p soft")).unwrap().soft);
        assert_eq!(invalidate(&a("p hard")), Err(ParseError::Syntax));
        assert_eq!(invalidate(&a("p soft x")), Err(ParseError::Syntax));
        assert_eq!(invalidate(&a("p soft local x")), Err(ParseError::Arity));
        assert_eq!(invalidate(&a("p soft soft")), Err(ParseError::Syntax));
        let i = invalidate(&a("p LOCAL soft")).unwrap();
        assert!(i.soft && i.local);
        let i = invalidate(&a("p local")).unwrap();
        assert!(!i.soft && i.local);
        assert!(!invalidate(&a("p")).unwrap().local);
        assert_eq!(
            stats(&a("namespace x")),
            Ok((StatsQuery::Namespace(b"x"), false))
        );
        assert_eq!(stats(&a("reset")), Ok((StatsQuery::Reset, false)));
        assert_eq!(stats(&a("reset local")), Ok((StatsQuery::Reset, true)));
        assert_eq!(stats(&a("LOCAL")), Ok((StatsQuery::Totals, true)));
        assert_eq!(
            stats(&a("namespace LOCAL")),
            Ok((StatsQuery::Namespace(b"LOCAL"), false))
        );
        assert_eq!(
            stats(&a("namespace LOCAL local")),
            Ok((StatsQuery::Namespace(b"LOCAL"), true))
        );
        assert_eq!(stats(&a("local local")), Err(ParseError::Syntax));
        assert_eq!(stats(&a("bogus")), Err(ParseError::Syntax));
        let t = tag_scan(&a("t 0 LOCAL MATCH LOCAL")).unwrap();
        assert!(t.local && t.pattern == Some(b"LOCAL".as_slice()));
        assert_eq!(tag_scan(&a("t 0 LOCAL LOCAL")), Err(ParseError::Syntax));
        let t = tag_scan(&a("t 0 MATCH u* COUNT 5")).unwrap();
        assert_eq!(
            (t.cursor, t.pattern, t.count),
            (0, Some(b"u*".as_slice()), 5)
        );
        assert_eq!(tag_scan(&a("t x")), Err(ParseError::InvalidCursor));
        assert_eq!(tag_scan(&a("t 0 COUNT 0")), Err(ParseError::Syntax));
        assert_eq!(
            tag_scan(&a("t 0 COUNT 999999999")).unwrap().count,
            MAX_SCAN_COUNT
        );
    }
}
