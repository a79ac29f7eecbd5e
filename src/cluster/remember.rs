//! The node's memory of recent tag and key-pattern invalidations (see `recent`), written by
//! every invalidation on a cluster node and read when an entry arrives from another node.

use crate::config;
use crate::pattern::Matcher;
use crate::server::acl::Access;
use crate::server::cluster_bus as bus;
use redis_module::Context;
use std::sync::Mutex;

use super::recent::{Recent, Record, Target};

static RECENT: Mutex<Option<Recent>> = Mutex::new(None);

/// Runs `f` on the remembered invalidations.
pub fn recent<R>(f: impl FnOnce(&mut Recent) -> R) -> R {
    let mut guard = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Recent::default))
}

/// What a recent invalidation covered.
pub enum Remembered<'a> {
    Tags(&'a [u8]),
    Keys(&'a [u8]),
}

/// How long an invalidation is remembered for entries arriving from another node: the
/// longest a cluster-wide command waits, twice, and a second.
pub fn window_ms() -> i64 {
    config::cluster_timeout_ms().saturating_mul(2) + 1000
}

/// Records a tag or key-pattern invalidation on a cluster node (see `recent`).
pub fn remember(ctx: &Context, db: i32, what: Remembered, soft: bool, access: &Access, now: i64) {
    if !bus::enabled(ctx) {
        return;
    }
    let target = match what {
        Remembered::Tags(p) => Target::Tag(Matcher::new(p)),
        Remembered::Keys(p) => Target::Key(Matcher::new(p)),
    };
    let user = if access.covers_all(ctx) {
        None
    } else {
        Some(access.user_name().unwrap_or_default())
    };
    let record = Record {
        at: now,
        db,
        target,
        soft,
        user,
    };
    recent(|r| r.record(record, window_ms()));
}
