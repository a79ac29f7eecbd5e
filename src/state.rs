//! The module's memory: one `Db` per database, the invalidation sequence, and the random
//! source for tokens and early refresh. Reached only from the main thread, through `with`;
//! never held across a call into the server (which may call back into the module).

use crate::db::Db;
use std::sync::Mutex;

pub struct State {
    dbs: Vec<Db>,
    seq: u64,
    rng: u64,
}

/// Bounds how many databases the module keeps state for (`databases` in redis.conf).
const MAX_DBS: usize = 1 << 16;

static STATE: Mutex<State> = Mutex::new(State {
    dbs: Vec::new(),
    seq: 0,
    rng: 0,
});

pub fn with<R>(f: impl FnOnce(&mut State) -> R) -> R {
    let mut guard = STATE
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    f(&mut guard)
}

impl State {
    pub fn seed(&mut self, seed: u64) {
        self.rng = seed | 1;
    }

    pub fn db(&mut self, id: i32) -> &mut Db {
        let at = usize::try_from(id).unwrap_or(0).min(MAX_DBS);
        if self.dbs.len() <= at {
            self.dbs.resize_with(at + 1, Db::default);
        }
        &mut self.dbs[at]
    }

    pub fn dbs(&self) -> impl Iterator<Item = (i32, &Db)> {
        self.dbs.iter().enumerate().map(|(i, db)| (i as i32, db))
    }

    pub fn dbs_mut(&mut self) -> impl Iterator<Item = (i32, &mut Db)> {
        self.dbs
            .iter_mut()
            .enumerate()
            .map(|(i, db)| (i as i32, db))
    }

    pub fn swap(&mut self, a: i32, b: i32) {
        let hi = a.max(b);
        self.db(hi);
        if let (Ok(a), Ok(b)) = (usize::try_from(a), usize::try_from(b)) {
            self.dbs.swap(a, b);
        }
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// splitmix64.
    pub fn next_random(&mut self) -> u64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    pub fn next_unit(&mut self) -> f64 {
        ((self.next_random() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
}

/// Tokens are 16 hex digits of a random 64-bit number: unique across restarts with
/// overwhelming probability, so a restart never makes an old token valid again.
pub fn format_token(token: u64) -> String {
    format!("{token:016x}")
}

pub fn parse_token(text: &[u8]) -> Option<u64> {
    if text.len() != 16 {
        return None;
    }
    u64::from_str_radix(std::str::from_utf8(text).ok()?, 16).ok()
}

/// A seed from the OS random source (std seeds its hash keys from it), mixed with the clock.
pub fn os_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u32(std::process::id());
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    hasher.finish() ^ clock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip() {
        assert_eq!(parse_token(format_token(42).as_bytes()), Some(42));
        assert_eq!(parse_token(b"xyz"), None);
        assert_eq!(parse_token(b"zzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn unit_random_in_range() {
        let mut s = State {
            dbs: Vec::new(),
            seq: 0,
            rng: 0,
        };
        s.seed(7);
        for _ in 0..1000 {
            let u = s.next_unit();
            assert!(u > 0.0 && u <= 1.0);
        }
    }
}
