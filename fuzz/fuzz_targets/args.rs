//! Argument parsing: every parser answers Ok or Err for any argument vector, never panics, and
//! what it accepts is within the documented bounds. A parsed CACHE.SETTAGGED, turned into the
//! command that replicates it (as commands.rs does), must parse again to the same entry: a
//! replica or an AOF reload must never refuse what the primary accepted.
//!
//! Input: byte 0 picks the parser, byte 1 is max-tags, bytes 2..4 pick the clock and the
//! default TTL; the rest is split on NUL into arguments. An argument `\xFE n` stands for
//! WORDS[n] (option words and edge numbers), so the fuzzer reaches deep option paths.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rediscache::args::{self, Freshness, MAX_COST_MS, MAX_LEASE_MS, MAX_SCAN_COUNT, MAX_TIME_MS};
use rediscache::args::{MAX_ABSOLUTE_MS, MAX_WAIT_MS};
use rediscache::persist::replication_args;
use rediscache::entry::{Entry, FOREVER};

const WORDS: &[&str] = &[
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "PERSIST",
    "STALE",
    "PSTALE",
    "COST",
    "LEASE",
    "KEEPTTL",
    "TAGS",
    "WAIT",
    "SOFT",
    "NAMESPACE",
    "NAMESPACES",
    "RESET",
    "MATCH",
    "COUNT",
    "tags",
    "ex",
    "0",
    "1",
    "-1",
    "-0",
    "01",
    "+1",
    " 1",
    "1 ",
    "",
    "10",
    "1000",
    "86400000",
    "86400001",
    "3600000",
    "3600001",
    "100000",
    "100001",
    "140737488355",
    "140737488356",
    "140737488355328",
    "140737488355329",
    "9223372036854775807",
    "-9223372036854775808",
    "9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
];

fn split(data: &[u8]) -> Vec<&[u8]> {
    if data.is_empty() {
        return Vec::new();
    }
    data.split(|&b| b == 0)
        .map(|a| match a {
            [0xFE, n] => WORDS[*n as usize % WORDS.len()].as_bytes(),
            _ => a,
        })
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let [which, max_tags, clock, ttl, rest @ ..] = data else {
        return;
    };
    let argv = split(rest);
    let max_tags = *max_tags as usize;
    match which % 6 {
        0 => {
            let Ok(cmd) = args::set_tagged(&argv, max_tags) else {
                return;
            };
            assert_eq!(cmd.key, argv[0]);
            assert_eq!(cmd.value, argv[1]);
            assert!(cmd.tags.len() <= max_tags);
            for (i, t) in cmd.tags.iter().enumerate() {
                assert!(!cmd.tags[..i].contains(t), "duplicate tag");
            }
            match cmd.fresh {
                Freshness::For(ms) => assert!(ms > 0 && ms <= MAX_TIME_MS),
                Freshness::Until(ms) => assert!(ms > 0 && ms <= MAX_ABSOLUTE_MS),
                Freshness::Default | Freshness::Persist => {}
            }
            if let Some(stale) = cmd.stale_ms {
                assert!((0..=MAX_TIME_MS).contains(&stale));
            }
            assert!((0..=MAX_COST_MS).contains(&cmd.cost_ms));
            replicate_and_reparse(&argv, &cmd, max_tags, *clock, *ttl);
        }
        1 => {
            if let Ok(cmd) = args::get_or_mark(&argv) {
                assert_eq!(cmd.key, argv[0]);
                if let Some(lease) = cmd.lease_ms {
                    assert!((1..=MAX_LEASE_MS).contains(&lease));
                }
                assert!((0..=MAX_WAIT_MS).contains(&cmd.wait_ms));
            }
        }
        2 => {
            if let Ok(cmd) = args::invalidate(&argv) {
                assert_eq!(cmd.pattern, argv[0]);
                let words = &argv[1..];
                let has = |w: &str| words.iter().any(|a| a.eq_ignore_ascii_case(w.as_bytes()));
                assert_eq!(cmd.soft, has("SOFT"));
                assert_eq!(cmd.local, has("LOCAL"));
            }
        }
        3 => {
            let _ = args::stats(&argv);
        }
        4 => {
            if let Ok(cmd) = args::tag_scan(&argv) {
                assert_eq!(cmd.tag, argv[0]);
                assert!((1..=MAX_SCAN_COUNT).contains(&cmd.count));
            }
        }
        _ => {
            for arg in &argv {
                if let Ok(n) = args::parse_i64(arg) {
                    assert_eq!(n.to_string().as_bytes(), *arg, "only canonical integers");
                }
            }
            if let Ok(word) = <[u8; 8]>::try_from(rest) {
                let n = i64::from_le_bytes(word);
                assert_eq!(args::parse_i64(n.to_string().as_bytes()), Ok(n));
            }
        }
    }
});

/// What CACHE.SETTAGGED stores and replicates (commands.rs), with the clock somewhere between
/// 2023 and about 2160 and `cache.default-ttl` from 0 to its maximum.
fn replicate_and_reparse(
    argv: &[&[u8]],
    cmd: &args::SetTagged,
    max_tags: usize,
    clock: u8,
    ttl: u8,
) {
    let now: i64 = 1_700_000_000_000 + i64::from(clock) * 17_000_000_000;
    let default_ttl_ms = match ttl {
        0..=127 => 0,
        255 => rediscache::config::MAX_DEFAULT_SECONDS * 1000,
        t => i64::from(t) * 1000,
    };
    let default_stale_ms = 0;
    let fresh_until = match cmd.fresh {
        Freshness::Default if default_ttl_ms > 0 => now + default_ttl_ms,
        Freshness::Default | Freshness::Persist => FOREVER,
        Freshness::For(ms) => now + ms,
        Freshness::Until(at) => at,
    };
    let stale_ms = cmd.stale_ms.unwrap_or(default_stale_ms);
    let cost_ms = u32::try_from(cmd.cost_ms).expect("COST is bounded by the parser");
    let entry = Entry::new(cmd.value, cmd.tags.iter().copied(), fresh_until, cost_ms);
    let stale = (fresh_until != FOREVER && !cmd.keep_ttl).then_some(stale_ms);
    let replicated = replication_args(cmd.key, &entry, fresh_until, stale, cmd.keep_ttl);
    let refs: Vec<&[u8]> = replicated.iter().map(|a| &**a).collect();
    let again = match args::set_tagged(&refs, max_tags) {
        Ok(again) => again,
        Err(e) => panic!(
            "the replica refuses what the primary accepted: {e:?}\n  primary: {:?}\n  replica: {:?}",
            show(argv),
            show(&refs)
        ),
    };
    let expected = if fresh_until == FOREVER {
        Freshness::Persist
    } else {
        Freshness::Until(fresh_until)
    };
    assert_eq!(again.fresh, expected);
    assert_eq!(again.stale_ms, stale);
    assert_eq!(again.cost_ms, cmd.cost_ms);
    assert_eq!(again.keep_ttl, cmd.keep_ttl);
    assert_eq!(again.tags, cmd.tags);
    assert_eq!((again.key, again.value), (cmd.key, cmd.value));
    assert_eq!(again.lease, None);
}

fn show(args: &[&[u8]]) -> Vec<String> {
    args.iter()
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}
