//! Module configs (`CONFIG SET cache.x`, loadmodule arguments, redis.conf lines). Read without
//! any lock on every command; out-of-range values are refused, never clamped.

use crate::error;
use crate::server::config::Shown;
use redis_module::configuration::{ConfigurationContext, ConfigurationValue};
use redis_module::{Context, RedisError, RedisString};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicU8, Ordering};
use std::sync::Mutex;

pub static DEFAULT_TTL: AtomicI64 = AtomicI64::new(0);
pub static DEFAULT_STALE: AtomicI64 = AtomicI64::new(0);
pub static LEASE_MS: AtomicI64 = AtomicI64::new(10_000);
pub static MAX_TAGS: AtomicI64 = AtomicI64::new(64);
pub static MAX_NAMESPACES: AtomicI64 = AtomicI64::new(1024);
pub static CLUSTER_TIMEOUT_MS: AtomicI64 = AtomicI64::new(2000);
pub static DELIMITER: Delimiter = Delimiter {
    byte: AtomicU8::new(b':'),
    changed: AtomicBool::new(false),
    shown: Shown::new(),
};
pub static EARLY_BETA: Beta = Beta {
    bits: AtomicU64::new(0x3FF0_0000_0000_0000), // 1.0
    text: Mutex::new(String::new()),
    shown: Shown::new(),
};

/// Ten years, in seconds: the largest default TTL or stale window.
pub const MAX_DEFAULT_SECONDS: i64 = 315_360_000;
pub const MAX_TAGS_LIMIT: i64 = 10_000;
pub const MAX_NAMESPACES_LIMIT: i64 = 1_000_000;
pub const MAX_BETA: f64 = 100.0;
/// One hour: the longest a cluster-wide command waits for the other primaries.
pub const MAX_CLUSTER_TIMEOUT_MS: i64 = 3_600_000;

pub fn default_ttl_ms() -> i64 {
    DEFAULT_TTL.load(Ordering::Relaxed) * 1000
}

pub fn default_stale_ms() -> i64 {
    DEFAULT_STALE.load(Ordering::Relaxed) * 1000
}

pub fn lease_ms() -> i64 {
    LEASE_MS.load(Ordering::Relaxed)
}

pub fn max_tags() -> i64 {
    MAX_TAGS.load(Ordering::Relaxed)
}

pub fn max_namespaces() -> usize {
    MAX_NAMESPACES.load(Ordering::Relaxed) as usize
}

/// How long a cluster-wide command waits for the other slot owners (ms).
pub fn cluster_timeout_ms() -> i64 {
    CLUSTER_TIMEOUT_MS.load(Ordering::Relaxed)
}

pub fn delimiter() -> u8 {
    DELIMITER.byte.load(Ordering::Relaxed)
}

pub fn early_beta() -> f64 {
    f64::from_bits(EARLY_BETA.bits.load(Ordering::Relaxed))
}

/// `cache.namespace-delimiter`: exactly one byte. Changing it recounts entries per namespace.
pub struct Delimiter {
    byte: AtomicU8,
    changed: AtomicBool,
    shown: Shown,
}

impl ConfigurationValue<RedisString> for Delimiter {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        self.shown.get(&[self.byte.load(Ordering::Relaxed)])
    }

    fn set(&self, _ctx: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let [byte] = val.as_slice() else {
            return Err(error::bad_delimiter());
        };
        if self.byte.swap(*byte, Ordering::Relaxed) != *byte {
            self.shown.forget();
            self.changed.store(true, Ordering::Relaxed);
        }
        Ok(())
    }
}

impl Delimiter {
    /// The new delimiter if it changed since the last call (the config's on-changed hook
    /// recounts the namespaces then).
    pub fn take_change(&self) -> Option<u8> {
        self.changed
            .swap(false, Ordering::Relaxed)
            .then(|| self.byte.load(Ordering::Relaxed))
    }
}

/// `cache.early-beta`: a float from 0 to 100, kept as written.
pub struct Beta {
    bits: AtomicU64,
    text: Mutex<String>,
    shown: Shown,
}

impl ConfigurationValue<RedisString> for Beta {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        let text = self.text.lock().map(|t| t.clone()).unwrap_or_default();
        self.shown.get(text.as_bytes())
    }

    fn set(&self, _ctx: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let text = val.try_as_str().map_err(|_| error::bad_early_beta())?;
        let beta: f64 = text
            .trim()
            .parse()
            .ok()
            .filter(|b: &f64| b.is_finite() && (0.0..=MAX_BETA).contains(b))
            .ok_or_else(error::bad_early_beta)?;
        self.bits.store(beta.to_bits(), Ordering::Relaxed);
        if let Ok(mut t) = self.text.lock() {
            *t = text.to_string();
        }
        self.shown.forget();
        Ok(())
    }
}

/// The configs' names without the module prefix.
const NAMES: [&str; 8] = [
    "default-ttl",
    "default-stale",
    "lease-ms",
    "max-tags",
    "namespace-delimiter",
    "max-namespaces",
    "early-beta",
    "cluster-timeout-ms",
];

/// Applies `loadmodule path.so [cache.]name value ...` with CONFIG SET's own validation, so a
/// bad value stops the module from loading instead of being clamped or ignored.
pub fn apply_module_args(ctx: &Context, args: &[RedisString]) -> Result<(), String> {
    if !args.len().is_multiple_of(2) {
        return Err("module arguments come in pairs: name value".to_string());
    }
    for pair in args.chunks(2) {
        let [name, value] = pair else { continue };
        let name = name.to_string_lossy();
        let short = name.strip_prefix("cache.").unwrap_or(&name);
        if !NAMES.contains(&short) {
            return Err(format!("unknown module argument '{name}'"));
        }
        let full = format!("cache.{short}");
        ctx.call(
            "CONFIG",
            &[b"SET".as_slice(), full.as_bytes(), value.as_slice()][..],
        )
        .map_err(|e| format!("{full} {}: {e}", value.to_string_lossy()))?;
    }
    Ok(())
}
