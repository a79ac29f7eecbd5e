//! Runs the lookup policy against the module's state: reads the view, decides, grants the
//! lease, counts, and replies. Called by GETORMARK and by the WAIT machinery.

use crate::config;
use crate::entry::Entry;
use crate::policy::{self, Outcome, View};
use crate::server::reply;
use crate::state::{self, format_token};
use redis_module::Context;

/// What a lookup found, with the token granted (if any).
pub enum Lookup {
    Hit(Option<u64>),
    Stale(Option<u64>),
    Miss(u64),
    Pending,
}

/// Decides HIT / STALE / MISS / PENDING for `key` and grants a lease where the policy says so.
pub fn lookup(db: i32, key: &[u8], entry: Option<&Entry>, lease_ms: i64, now: i64) -> Lookup {
    let config = policy::Config {
        early_beta: config::early_beta(),
    };
    let (delimiter, max_ns) = (config::delimiter(), config::max_namespaces());
    state::with(|s| {
        let view = View::of(s.db(db), key, entry, now);
        let decision = policy::decide(view, now, &mut || s.next_unit(), config);
        let token = decision.grant.then(|| {
            let token = s.next_random();
            let seq = s.next_seq();
            s.db(db).grant_lease(key, token, seq, now, lease_ms);
            token
        });
        let stats = s.db(db).stats_mut();
        for e in decision.events.iter() {
            stats.record(key, e, delimiter, max_ns);
        }
        match (decision.outcome, token) {
            (Outcome::Hit, t) => Lookup::Hit(t),
            (Outcome::Stale, t) => Lookup::Stale(t),
            (Outcome::Miss, Some(t)) => Lookup::Miss(t),
            (Outcome::Miss, None) | (Outcome::Pending, _) => Lookup::Pending,
        }
    })
}

pub fn reply_lookup(ctx: &Context, lookup: &Lookup, value: Option<&[u8]>) {
    reply::array(ctx, 3);
    let (state, value, token) = match *lookup {
        Lookup::Hit(t) => (&b"HIT"[..], value, t),
        Lookup::Stale(t) => (&b"STALE"[..], value, t),
        Lookup::Miss(t) => (&b"MISS"[..], None, Some(t)),
        Lookup::Pending => (&b"PENDING"[..], None, None),
    };
    reply::bulk(ctx, state);
    reply::bulk_or_null(ctx, value);
    match token {
        Some(t) => reply::bulk(ctx, format_token(t).as_bytes()),
        None => reply::null(ctx),
    }
}
