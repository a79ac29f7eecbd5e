//! Decoding a saved entry (src/persist.rs `decode_entry`, what `rdb_load` runs) from the
//! plain-bytes reader: any input is refused or decoded, never a panic, and what decodes
//! encodes back to the bytes it was read from (flag bits other than "dead" aside).
//!
//! Allocation stays bounded by the input: scripts/fuzz.sh runs this target with
//! `-malloc_limit_mb`, so a corrupted tag count or length that sized an allocation before
//! being checked would be reported as a crash.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rediscache::persist::{decode_entry, SliceReader};
use rediscache::entry::Entry;

fn encode(e: &Entry, flags: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let string = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s);
    };
    string(&mut out, e.value());
    out.extend(e.fresh_until.to_le_bytes());
    out.extend(i64::from(e.cost_ms()).to_le_bytes());
    out.extend(flags.to_le_bytes());
    out.extend((e.tags().count() as u64).to_le_bytes());
    for tag in e.tags() {
        string(&mut out, tag);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut reader = SliceReader(data);
    let Some(entry) = decode_entry(&mut reader) else {
        return;
    };
    let consumed = &data[..data.len() - reader.0.len()];
    // The flags word sits after the value and two numbers.
    let value_end = 8 + entry.value().len();
    let flags = u64::from_le_bytes(consumed[value_end + 16..value_end + 24].try_into().unwrap());
    assert_eq!(entry.dead(), flags & 1 != 0);
    assert_eq!(encode(&entry, flags), consumed);
    assert!(entry.mem_usage() >= entry.value().len());
    let copy = entry.duplicate();
    assert!(copy.tags().eq(entry.tags()));
    assert_eq!(copy.value(), entry.value());
});
