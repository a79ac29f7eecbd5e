//! `CACHE.GETORMARK ... WAIT`: clients blocked (never the server) on a key someone else is
//! computing. A set wakes them all; a lapsed lease is handed to exactly one of them; the rest
//! wait on; a timeout answers PENDING; a client that disconnects is forgotten.

use crate::config;
use crate::lookup::{lookup, reply_lookup, Lookup};
use crate::server::blocking::{self, BlockedClient, Blocker, ClientId};
use crate::server::keys::{now_ms, select_db, Content, Keyspace};
use crate::server::reply;
use crate::state;
use crate::stats::Event;
use redis_module::{Context, ContextFlags, RedisResult, RedisValue};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// How often lapsed leases are checked while anyone waits.
const LAPSE_CHECK: Duration = Duration::from_millis(5);
/// Bounds the clients blocked on one server.
const MAX_WAITERS: usize = 100_000;

struct Waiter {
    bc: BlockedClient<Wait>,
    lease_ms: i64,
}

/// Why a waiter was woken; handed to its reply callback.
enum Wake {
    Set,
    Handover(u64),
}

struct Private {
    db: i32,
    key: Vec<u8>,
    lease_ms: i64,
    wake: Wake,
}

#[derive(Default)]
struct Waiting {
    by_key: HashMap<(i32, Vec<u8>), Vec<Waiter>>,
    count: usize,
    timer_armed: bool,
}

static WAITING: Mutex<Option<Waiting>> = Mutex::new(None);

fn with<R>(f: impl FnOnce(&mut Waiting) -> R) -> R {
    let mut guard = WAITING.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Waiting::default))
}

fn count(db: i32, key: &[u8], event: Event) {
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    state::with(|s| s.db(db).stats_mut().record(key, event, delimiter, max_ns));
}

/// Blocks the calling client on `key`, or answers PENDING where blocking is not allowed
/// (MULTI, scripts) or too many clients already wait.
pub fn block(ctx: &Context, db: i32, key: &[u8], lease_ms: i64, wait_ms: i64) -> RedisResult {
    let deny = ContextFlags::DENY_BLOCKING | ContextFlags::MULTI | ContextFlags::LUA;
    if ctx.get_flags().intersects(deny) || with(|w| w.count >= MAX_WAITERS) {
        reply_lookup(ctx, &Lookup::Pending, None);
        return Ok(RedisValue::NoReply);
    }
    let Some(bc) = blocking::block::<Wait>(ctx, wait_ms) else {
        reply_lookup(ctx, &Lookup::Pending, None);
        return Ok(RedisValue::NoReply);
    };
    count(db, key, Event::Wait);
    with(|w| {
        w.by_key
            .entry((db, key.to_vec()))
            .or_default()
            .push(Waiter { bc, lease_ms });
        w.count += 1;
    });
    arm(ctx);
    Ok(RedisValue::NoReply)
}

fn arm(ctx: &Context) {
    let arm = with(|w| !std::mem::replace(&mut w.timer_armed, true));
    if arm {
        ctx.create_timer(LAPSE_CHECK, check_lapses, ());
    }
}

fn unblock(waiter: Waiter, db: i32, key: &[u8], wake: Wake) {
    waiter.bc.unblock(Some(Private {
        db,
        key: key.to_vec(),
        lease_ms: waiter.lease_ms,
        wake,
    }));
}

/// A set on `key`: every waiter answers with a fresh lookup.
pub fn wake_on_set(_ctx: &Context, db: i32, key: &[u8]) {
    let woken = with(|w| {
        if w.count == 0 {
            return Vec::new();
        }
        let list = w.by_key.remove(&(db, key.to_vec())).unwrap_or_default();
        w.count -= list.len();
        list
    });
    for waiter in woken {
        count(db, key, Event::WokenBySet);
        unblock(waiter, db, key, Wake::Set);
    }
}

/// Hands each waited key whose lease lapsed to one waiter (or wakes all if an entry appeared).
fn check_lapses(ctx: &Context, _: ()) {
    let keys: Vec<(i32, Vec<u8>)> = with(|w| w.by_key.keys().cloned().collect());
    let now = now_ms();
    for (db, key) in keys {
        if !select_db(ctx, db) {
            continue;
        }
        let present = match Keyspace::of(ctx).open(&key, false).content() {
            Content::Entry(e) => {
                state::with(|s| s.db(db).freshness(&key, e, now) != crate::entry::Freshness::Dead)
            }
            _ => false,
        };
        if present {
            wake_on_set(ctx, db, &key);
            continue;
        }
        if state::with(|s| s.db(db).is_protected(&key, now)) {
            continue;
        }
        let next = with(|w| {
            let list = w.by_key.get_mut(&(db, key.clone()))?;
            let first = (!list.is_empty()).then(|| list.remove(0));
            if list.is_empty() {
                w.by_key.remove(&(db, key.clone()));
            }
            if first.is_some() {
                w.count -= 1;
            }
            first
        });
        if let Some(waiter) = next {
            if let Lookup::Miss(token) = lookup(db, &key, None, waiter.lease_ms, now) {
                count(db, &key, Event::Handover);
                unblock(waiter, db, &key, Wake::Handover(token));
            } else {
                // Not reachable while unprotected; keep the waiter rather than lose it.
                with(|w| {
                    w.by_key
                        .entry((db, key.clone()))
                        .or_default()
                        .insert(0, waiter);
                    w.count += 1;
                });
            }
        }
    }
    let again = with(|w| {
        w.timer_armed = w.count > 0;
        w.timer_armed
    });
    if again {
        ctx.create_timer(LAPSE_CHECK, check_lapses, ());
    }
}

/// Drops a blocked client from the lists; returns the database and key it waited on, and its
/// handle, still to be unblocked.
fn forget(client: ClientId) -> Option<(i32, Vec<u8>, BlockedClient<Wait>)> {
    with(|w| {
        let mut found = None;
        w.by_key.retain(|(db, key), list| {
            if found.is_none() {
                if let Some(at) = list.iter().position(|waiter| waiter.bc.id() == client) {
                    found = Some((*db, key.clone(), list.remove(at).bc));
                }
            }
            !list.is_empty()
        });
        if found.is_some() {
            w.count -= 1;
        }
        found
    })
}

/// The server's callbacks for clients blocked by WAIT.
struct Wait;

impl Blocker for Wait {
    type Private = Private;

    fn on_reply(ctx: &Context, private: Option<&Private>) {
        let Some(private) = private else {
            reply_lookup(ctx, &Lookup::Pending, None);
            return;
        };
        match private.wake {
            Wake::Handover(token) => reply_lookup(ctx, &Lookup::Miss(token), None),
            Wake::Set => {
                let mut keyspace = Keyspace::of(ctx);
                let mut key = keyspace.open(&private.key, false);
                let entry = match key.content() {
                    Content::Entry(e) => Some(&*e),
                    _ => None,
                };
                let found = lookup(private.db, &private.key, entry, private.lease_ms, now_ms());
                reply_lookup(ctx, &found, entry.map(crate::entry::Entry::value));
            }
        }
    }

    fn on_timeout(ctx: &Context, client: ClientId) {
        if let Some((db, key, bc)) = forget(client) {
            count(db, &key, Event::WaitTimeout);
            release(bc);
        }
        reply::array(ctx, 3);
        reply::bulk(ctx, b"PENDING");
        reply::null(ctx);
        reply::null(ctx);
    }

    fn on_disconnect(client: ClientId) {
        if let Some((_, _, bc)) = forget(client) {
            release(bc);
        }
    }
}

/// Every blocked client must be unblocked once, even after a timeout or a disconnect, or the
/// server keeps its handle. Waiters woken by the module were unblocked when taken off the list.
fn release(bc: BlockedClient<Wait>) {
    bc.unblock(None);
}
