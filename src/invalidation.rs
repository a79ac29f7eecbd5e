//! The invalidation and scan work shared by the command handlers and the cluster fan-out (a
//! forwarded part of a cluster-wide command runs the same code on this node's entries).

use crate::channel;
use crate::cluster::remember;
use crate::config;
use crate::db::{TagWork, SYNC_LIMIT};
use crate::entry::Freshness;
use crate::memberset::Bytes;
use crate::server::acl::{Access, Intent};
use crate::server::command::replicate;
use crate::server::keys::{now_ms, signal_modified, Content, Keyspace};
use crate::server::reply;
use crate::state;
use crate::stats::{Event, StatValue};
use redis_module::{Context, ContextFlags};
use std::sync::Arc;

/// Commands applied from the primary or the AOF are not user traffic: they count nothing.
pub fn is_user_traffic(ctx: &Context) -> bool {
    !ctx.get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING)
}

/// Invalidates the entries under `keys` now: deletes them, or turns them stale. Returns the
/// keys of the live entries it touched.
pub fn invalidate_keys(ctx: &Context, db: i32, keys: &[Bytes], soft: bool, now: i64) -> Vec<Bytes> {
    let mut touched = Vec::new();
    let mut keyspace = Keyspace::of(ctx);
    for name in keys {
        let mut key = keyspace.open(name, true);
        let Content::Entry(entry) = key.content() else {
            continue;
        };
        if state::with(|s| s.db(db).freshness(name, entry, now)) == Freshness::Dead {
            continue;
        }
        if soft {
            entry.make_stale(now);
            drop(key);
        } else {
            key.delete();
        }
        signal_modified(ctx, name);
        touched.push(name.clone());
    }
    touched
}

/// Counts the invalidation (`swept`: entries left to the sweeper); `command`: this node
/// received the command itself (a forwarded part of a cluster-wide one counts its entries,
/// not a second command).
pub fn finish_invalidation(
    ctx: &Context,
    db: i32,
    touched: &[Bytes],
    swept: u64,
    command: bool,
) -> i64 {
    if is_user_traffic(ctx) {
        let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
        state::with(|s| {
            let stats = s.db(db).stats_mut();
            if command {
                stats.record_command();
            }
            stats.total.invalidated += swept;
            for key in touched {
                stats.record(key, Event::Invalidated(1), delimiter, max_ns);
            }
        });
    }
    (touched.len() as u64 + swept) as i64
}

/// Replicates an invalidation to replicas and the AOF. For a user with every key: the command
/// itself (`forwarded`: rebuilt from these arguments, for a part of a cluster-wide command),
/// so replicas apply the same invalidation to the same index. For a restricted user: one exact
/// invalidation per entry touched (all of them were handled in the command), since replicas
/// apply what they receive without a user and would reach other users' keys.
pub fn replicate_invalidation(
    ctx: &Context,
    access: &Access,
    forwarded: Option<(&std::ffi::CStr, &[u8])>,
    soft: bool,
    touched: &[Bytes],
) {
    if access.covers_all(ctx) {
        match forwarded {
            None => {
                ctx.replicate_verbatim();
            }
            Some((command, pattern)) => {
                let mut args: Vec<&[u8]> = vec![pattern];
                if soft {
                    args.push(b"SOFT");
                }
                args.push(b"LOCAL");
                replicate(ctx, command, &args);
            }
        }
        return;
    }
    for key in touched {
        if soft {
            let exact = crate::pattern::escape(key);
            let args: [&[u8]; 3] = [&exact, b"SOFT", b"LOCAL"];
            replicate(ctx, c"CACHE.INVALIDATE", &args);
        } else {
            replicate(ctx, c"DEL", &[&**key]);
        }
    }
}

/// A restricted user's invalidation reaches replicas as per-key commands, not as the command
/// that announces itself there: outside a cluster, the announcement is replicated with them so
/// replicas' subscribers get it too (in a cluster the server carries it to every node). Their
/// per-key SOFT invalidations announce themselves as `softpattern <key>` on such replicas too.
pub fn replicate_announcement(
    ctx: &Context,
    access: &Access,
    db: i32,
    kind: channel::Kind,
    soft: bool,
    argument: &[u8],
) {
    let flags = ctx.get_flags();
    let internal = flags.intersects(ContextFlags::REPLICATED | ContextFlags::LOADING);
    if internal || flags.contains(ContextFlags::CLUSTER) || access.covers_all(ctx) {
        return;
    }
    let (name, text) = (channel::channel(db), channel::message(kind, soft, argument));
    replicate(ctx, c"PUBLISH", &[&name, &text]);
}

/// Invalidates the entries whose key matches `pattern` that `access` may touch; returns how
/// many, and the keys handled in the command. Replication is the caller's.
pub fn invalidate_pattern(
    ctx: &Context,
    db: i32,
    pattern: &[u8],
    soft: bool,
    access: &Access,
    command: bool,
) -> (i64, Vec<Bytes>) {
    let now = now_ms();
    let allowed = |k: &[u8]| access.allows(ctx, k, Intent::Invalidate);
    let seq = state::with(|s| s.next_seq());
    let mut work = state::with(|s| s.db(db).match_keys(pattern, soft, seq, now, false));
    if work.sweep.is_some() && !access.covers_all(ctx) {
        // The sweeper runs without a user: a restricted user's matches are all checked now.
        work = state::with(|s| s.db(db).match_keys(pattern, soft, seq, now, true));
    }
    work.now.retain(|k| allowed(k));
    state::with(|s| s.db(db).leases_mut().void_pattern(pattern, allowed));
    let touched = invalidate_keys(ctx, db, &work.now, soft, now);
    if let Some(rest) = work.sweep {
        state::with(|s| s.db(db).start_pattern_sweep(rest));
        crate::sweep::start(ctx);
    }
    remember::remember(
        ctx,
        db,
        remember::Remembered::Keys(pattern),
        soft,
        access,
        now,
    );
    let count = finish_invalidation(ctx, db, &touched, 0, command) + work.later as i64;
    (count, touched)
}

/// Invalidates the entries carrying `tag` (or a tag matching it) that `access` may touch;
/// returns how many, and the keys handled in the command. Replication is the caller's.
pub fn invalidate_tags(
    ctx: &Context,
    db: i32,
    pattern: &[u8],
    soft: bool,
    access: &Access,
    command: bool,
) -> (i64, Vec<Bytes>) {
    let now = now_ms();
    let literal = crate::pattern::as_literal(pattern);
    let (tags, large) = state::with(|s| {
        let d = s.db(db);
        let tags: Vec<Bytes> = match &literal {
            Some(tag) => vec![Arc::from(tag.as_slice())],
            None => d.tags_matching(pattern),
        };
        let large = tags
            .iter()
            .any(|t| d.tag_members(t).is_some_and(|m| m.len() > SYNC_LIMIT));
        (tags, large)
    });
    // The sweeper runs without a user: a restricted user's members are all checked now.
    let keys_only = large && !access.covers_all(ctx);
    let (mut now_keys, swept) = state::with(|s| {
        let seq = s.next_seq();
        let d = s.db(db);
        if literal.is_none() {
            d.leases_mut().void_tag_pattern(pattern, seq);
        }
        let mut now_keys = Vec::new();
        let mut swept = 0u64;
        for tag in tags {
            match d.invalidate_tag(&tag, soft, seq, now, keys_only) {
                TagWork::Now(keys) => now_keys.extend(keys),
                TagWork::Swept(n) => swept += n as u64,
            }
        }
        now_keys.sort_unstable();
        now_keys.dedup();
        (now_keys, swept)
    });
    now_keys.retain(|k| access.allows(ctx, k, Intent::Invalidate));
    if swept > 0 {
        crate::sweep::start(ctx);
    }
    let touched = invalidate_keys(ctx, db, &now_keys, soft, now);
    remember::remember(
        ctx,
        db,
        remember::Remembered::Tags(pattern),
        soft,
        access,
        now,
    );
    let count = finish_invalidation(ctx, db, &touched, swept, command);
    (count, touched)
}

pub fn reply_fields(ctx: &Context, fields: &[(&str, StatValue)]) {
    reply::map(ctx, fields.len());
    for (name, value) in fields {
        reply::bulk(ctx, name.as_bytes());
        match value {
            StatValue::Int(n) => reply::int(ctx, i64::try_from(*n).unwrap_or(i64::MAX)),
            StatValue::Text(t) => reply::bulk(ctx, t.as_bytes()),
        }
    }
}

pub fn reply_scan<K: AsRef<[u8]>>(ctx: &Context, next: u64, keys: &[K]) {
    reply::array(ctx, 2);
    reply::bulk(ctx, next.to_string().as_bytes());
    reply::array(ctx, keys.len());
    for k in keys {
        reply::bulk(ctx, k.as_ref());
    }
}

/// One page of this node's keys carrying `tag` that `access` may read: (next cursor, keys).
pub fn tag_scan_local(
    ctx: &Context,
    db: i32,
    access: &Access,
    tag: &[u8],
    cursor: u64,
    count: usize,
    pattern: Option<&[u8]>,
) -> (u64, Vec<Bytes>) {
    let (next, candidates) = state::with(|s| {
        let d = s.db(db);
        match d.tag_members(tag) {
            Some(set) => {
                let (next, ids) = set.scan(cursor, count);
                let mut keys = d.names(ids.iter().copied());
                if let Some(p) = pattern {
                    let matcher = crate::pattern::Matcher::new(p);
                    keys.retain(|k| matcher.matches(k));
                }
                (next, keys)
            }
            None => (0, Vec::new()),
        }
    });
    let now = now_ms();
    let mut keyspace = Keyspace::of(ctx);
    let live: Vec<Bytes> = candidates
        .into_iter()
        .filter(|name| access.allows(ctx, name, Intent::Read))
        .filter(|name| {
            let mut key = keyspace.open(name, false);
            match key.content() {
                Content::Entry(e) => {
                    state::with(|s| s.db(db).freshness(name, e, now) != Freshness::Dead)
                }
                _ => false,
            }
        })
        .collect();
    (next, live)
}
