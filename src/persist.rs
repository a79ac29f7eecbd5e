//! The entry's persisted forms, without the server: the RDB field layout (versioned) and the
//! `CACHE.SETTAGGED` arguments that recreate an entry (replication and AOF rewrite). The server
//! side of both lives in `server::datatype`.

use crate::entry::{Entry, FOREVER};
use std::borrow::Cow;

/// The RDB encoding written by this build. Version 1: value, fresh-until (ms), cost (ms),
/// flags (bit 0: dead), tag count, tags.
pub const ENCODING_VERSION: i32 = 1;
pub const FLAG_DEAD: u64 = 1;
/// A corrupted tag count must not size an allocation.
const MAX_LOADED_TAGS: u64 = 1 << 20;
/// Tags reserved for up front when loading (`cache.max-tags` defaults to 64); more grow the
/// vector as they are read.
const PREALLOCATED_TAGS: usize = 64;

/// The fields of a saved entry, read in order: from the server's RDB stream in `rdb_load`,
/// from plain bytes ([`SliceReader`]) in tests and fuzz targets. `None`: truncated or corrupted.
pub trait EntryReader {
    type Buf: AsRef<[u8]>;
    fn string(&mut self) -> Option<Self::Buf>;
    fn signed(&mut self) -> Option<i64>;
    fn unsigned(&mut self) -> Option<u64>;
}

/// Entry fields as plain bytes, for decoding outside a server: numbers are 8 bytes
/// little-endian, a string is its length as such a number, then its bytes.
pub struct SliceReader<'a>(pub &'a [u8]);

impl SliceReader<'_> {
    fn word(&mut self) -> Option<[u8; 8]> {
        let (word, rest) = self.0.split_first_chunk::<8>()?;
        self.0 = rest;
        Some(*word)
    }
}

impl<'a> EntryReader for SliceReader<'a> {
    type Buf = &'a [u8];

    fn string(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.unsigned()?).ok()?;
        if len > self.0.len() {
            return None;
        }
        let (s, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(s)
    }

    fn signed(&mut self) -> Option<i64> {
        self.word().map(i64::from_le_bytes)
    }

    fn unsigned(&mut self) -> Option<u64> {
        self.word().map(u64::from_le_bytes)
    }
}

/// Decodes one entry saved with encoding `version`; None for a version this build does not read
/// (only 1 so far; every later build must still read every earlier version: the fixtures in
/// tests/fixtures/ hold one RDB file per version).
pub fn decode_versioned(r: &mut impl EntryReader, version: i32) -> Option<Entry> {
    match version {
        1 => decode_entry(r),
        _ => None,
    }
}

/// The encoding versions this build reads.
pub fn reads_version(version: i32) -> bool {
    (1..=ENCODING_VERSION).contains(&version)
}

/// Decodes one entry (encoding version 1). The tag count is checked before it sizes anything,
/// and space is reserved only for as many tags as a sane entry has: the rest must really be
/// there to be read.
pub fn decode_entry(r: &mut impl EntryReader) -> Option<Entry> {
    let value = r.string()?.as_ref().to_vec();
    let fresh_until = r.signed()?;
    let cost_ms = r.signed()?;
    let flags = r.unsigned()?;
    let count = r.unsigned()?;
    if count > MAX_LOADED_TAGS {
        return None;
    }
    let reserve = usize::try_from(count).map_or(PREALLOCATED_TAGS, |c| c.min(PREALLOCATED_TAGS));
    let mut tags: Vec<Vec<u8>> = Vec::with_capacity(reserve);
    for _ in 0..count {
        tags.push(r.string()?.as_ref().to_vec());
    }
    let cost_ms = u32::try_from(cost_ms).ok()?;
    let mut entry = Entry::new(
        &value,
        tags.iter().map(|t| t.as_slice()),
        fresh_until,
        cost_ms,
    );
    entry.set_dead(flags & FLAG_DEAD != 0);
    Some(entry)
}

/// One argument of a replicated `CACHE.SETTAGGED`, as the server side builds it without
/// copying what the call already holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The call's own argument at this index (the command name is 0).
    Arg(usize),
    /// Every argument of the call from this index on.
    ArgsFrom(usize),
    Word(Word),
    Int(i64),
}

/// The fixed words of a replicated set (the server side keeps one string of each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Word {
    Pxat,
    Persist,
    Pstale,
    Cost,
    KeepTtl,
}

impl Word {
    pub const ALL: [Word; 5] = [
        Word::Pxat,
        Word::Persist,
        Word::Pstale,
        Word::Cost,
        Word::KeepTtl,
    ];

    pub fn text(self) -> &'static [u8] {
        match self {
            Word::Pxat => b"PXAT",
            Word::Persist => b"PERSIST",
            Word::Pstale => b"PSTALE",
            Word::Cost => b"COST",
            Word::KeepTtl => b"KEEPTTL",
        }
    }
}

/// How a `CACHE.SETTAGGED` call replicates: its key, value and `TAGS ...` tail as given (a
/// replica parses them exactly as the primary did), its times made absolute (the same
/// arguments [`replication_args`] writes for the entry).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SetReplication {
    parts: [Part; SetReplication::CAPACITY],
    len: usize,
}

impl SetReplication {
    /// Key, value, three timed options with their numbers, KEEPTTL, the tags.
    pub const CAPACITY: usize = 10;

    /// `tags_at`: where the call's `TAGS` word is, counting the command name as 0.
    pub fn new(
        fresh_until: i64,
        stale_ms: Option<i64>,
        cost_ms: u32,
        keep_ttl: bool,
        tags_at: Option<usize>,
    ) -> SetReplication {
        let mut r = SetReplication {
            parts: [Part::Arg(0); SetReplication::CAPACITY],
            len: 0,
        };
        r.push(Part::Arg(1));
        r.push(Part::Arg(2));
        if fresh_until == FOREVER {
            r.push(Part::Word(Word::Persist));
        } else {
            r.push(Part::Word(Word::Pxat));
            r.push(Part::Int(fresh_until));
        }
        if let Some(stale) = stale_ms {
            r.push(Part::Word(Word::Pstale));
            r.push(Part::Int(stale));
        }
        if cost_ms > 0 {
            r.push(Part::Word(Word::Cost));
            r.push(Part::Int(i64::from(cost_ms)));
        }
        if keep_ttl {
            r.push(Part::Word(Word::KeepTtl));
        }
        if let Some(at) = tags_at {
            r.push(Part::ArgsFrom(at));
        }
        r
    }

    /// `new` pushes at most CAPACITY parts.
    fn push(&mut self, part: Part) {
        if let Some(slot) = self.parts.get_mut(self.len) {
            *slot = part;
            self.len += 1;
        }
    }

    pub fn parts(&self) -> &[Part] {
        &self.parts[..self.len]
    }
}

/// Arguments of the `CACHE.SETTAGGED` that recreates an entry exactly: absolute fresh-until,
/// stale window in ms, cost and tags. Key, value and tags are borrowed, not copied.
pub fn replication_args<'a>(
    key: &'a [u8],
    entry: &'a Entry,
    fresh_until: i64,
    stale_ms: Option<i64>,
    keep_ttl: bool,
) -> Vec<Cow<'a, [u8]>> {
    let word = |w: &'static [u8]| Cow::Borrowed(w);
    let number = |n: i64| Cow::Owned(n.to_string().into_bytes());
    let mut args = Vec::with_capacity(12 + entry.tags().count());
    args.extend([Cow::Borrowed(key), Cow::Borrowed(entry.value())]);
    if fresh_until == FOREVER {
        args.push(word(b"PERSIST"));
    } else {
        args.extend([word(b"PXAT"), number(fresh_until)]);
    }
    if let Some(stale) = stale_ms {
        args.extend([word(b"PSTALE"), number(stale)]);
    }
    if entry.cost_ms() > 0 {
        args.extend([word(b"COST"), number(i64::from(entry.cost_ms()))]);
    }
    if keep_ttl {
        args.push(word(b"KEEPTTL"));
    }
    if entry.tags().next().is_some() {
        args.push(word(b"TAGS"));
        args.extend(entry.tags().map(Cow::Borrowed));
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(value: &[u8], fresh_until: i64, cost: i64, flags: u64, tags: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        let string = |out: &mut Vec<u8>, s: &[u8]| {
            out.extend((s.len() as u64).to_le_bytes());
            out.extend(s);
        };
        string(&mut out, value);
        out.extend(fresh_until.to_le_bytes());
        out.extend(cost.to_le_bytes());
        out.extend(flags.to_le_bytes());
        out.extend((tags.len() as u64).to_le_bytes());
        for tag in tags {
            string(&mut out, tag);
        }
        out
    }

    /// The parts against a call's arguments, as the server side renders them.
    fn render(parts: &[Part], call: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for part in parts {
            match *part {
                Part::Arg(i) => out.push(call[i].to_vec()),
                Part::ArgsFrom(i) => out.extend(call[i..].iter().map(|a| a.to_vec())),
                Part::Word(w) => out.push(w.text().to_vec()),
                Part::Int(n) => out.push(n.to_string().into_bytes()),
            }
        }
        out
    }

    /// What a replica parses from the call's replication is what it parses from the entry's
    /// own arguments (also for repeated tags, sent as the user gave them).
    #[test]
    fn a_set_replicates_as_the_entry_it_stored() {
        use crate::args::{set_tagged, Freshness};
        let now = 1_700_000_000_000;
        for call in [
            "CACHE.SETTAGGED k v EX 10 TAGS a b a",
            "CACHE.SETTAGGED k v tags x",
            "CACHE.SETTAGGED k v PX 5 STALE 3 COST 40 LEASE 00000000000000ff",
            "CACHE.SETTAGGED k v PERSIST KEEPTTL TAGS",
            "CACHE.SETTAGGED k v PXAT 1700000000123 KEEPTTL COST 1 TAGS t",
        ] {
            let call: Vec<&[u8]> = call.split(' ').map(str::as_bytes).collect();
            let cmd = set_tagged(&call[1..], 64).unwrap();
            let fresh_until = match cmd.fresh {
                Freshness::For(ms) => now + ms,
                Freshness::Until(at) => at,
                Freshness::Default | Freshness::Persist => FOREVER,
            };
            let stale =
                (fresh_until != FOREVER && !cmd.keep_ttl).then(|| cmd.stale_ms.unwrap_or(0));
            let cost = u32::try_from(cmd.cost_ms).unwrap();
            let entry = Entry::new(cmd.value, cmd.tags.iter().copied(), fresh_until, cost);
            let plan = SetReplication::new(
                fresh_until,
                stale,
                cost,
                cmd.keep_ttl,
                cmd.tags_at.map(|at| at + 1),
            );
            let sent = render(plan.parts(), &call);
            let sent: Vec<&[u8]> = sent.iter().map(Vec::as_slice).collect();
            let expected = replication_args(cmd.key, &entry, fresh_until, stale, cmd.keep_ttl);
            let expected: Vec<&[u8]> = expected.iter().map(|a| &**a).collect();
            let (mut a, mut b) = (
                set_tagged(&sent, 64).unwrap(),
                set_tagged(&expected, 64).unwrap(),
            );
            assert_eq!(a.lease, None, "a replica holds no leases");
            (a.tags_at, b.tags_at) = (None, None);
            assert_eq!(a, b, "{sent:?}");
        }
    }

    #[test]
    fn reads_every_version_up_to_the_current_one() {
        let bytes = encode(b"val", 1234, 56, 0, &[b"t"]);
        for version in 1..=ENCODING_VERSION {
            assert!(reads_version(version));
            let e = decode_versioned(&mut SliceReader(&bytes), version).unwrap();
            assert_eq!((e.value(), e.fresh_until), (&b"val"[..], 1234));
        }
        for version in [0, -1, ENCODING_VERSION + 1] {
            assert!(!reads_version(version));
            assert!(decode_versioned(&mut SliceReader(&bytes), version).is_none());
        }
    }

    #[test]
    fn decodes_what_was_saved() {
        let bytes = encode(b"val", 1234, 56, FLAG_DEAD, &[b"t1", b"", b"t3"]);
        let e = decode_entry(&mut SliceReader(&bytes)).unwrap();
        assert_eq!(e.value(), b"val");
        assert_eq!((e.fresh_until, e.cost_ms(), e.dead()), (1234, 56, true));
        let tags: Vec<&[u8]> = e.tags().collect();
        assert_eq!(tags, [&b"t1"[..], b"", b"t3"]);
    }

    #[test]
    fn refuses_every_truncation() {
        let bytes = encode(b"val", FOREVER, 0, 0, &[b"a", b"bc"]);
        for len in 0..bytes.len() {
            assert!(
                decode_entry(&mut SliceReader(&bytes[..len])).is_none(),
                "{len}"
            );
        }
    }

    #[test]
    fn refuses_huge_counts_and_lengths() {
        let mut bytes = encode(b"v", 1, 0, 0, &[]);
        let at = bytes.len() - 8;
        bytes[at..].copy_from_slice(&(MAX_LOADED_TAGS + 1).to_le_bytes());
        assert!(decode_entry(&mut SliceReader(&bytes)).is_none());
        // A plausible count with no tags behind it reserves little and fails on the first read.
        bytes[at..].copy_from_slice(&MAX_LOADED_TAGS.to_le_bytes());
        assert!(decode_entry(&mut SliceReader(&bytes)).is_none());
        let mut long = u64::MAX.to_le_bytes().to_vec();
        long.extend(b"abc");
        assert!(decode_entry(&mut SliceReader(&long)).is_none());
    }
}
