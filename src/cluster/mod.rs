//! Redis Cluster: the commands that name no key (INVALIDATE, INVALIDATETAG, STATS, TAGSCAN)
//! act on every shard in one call. The node a client reaches applies the command itself,
//! sends it over the cluster bus to every other slot-owning primary, blocks the client (never
//! the server) and replies once all have answered, or with an `INCOMPLETE` error naming the
//! nodes that did not within `cache.cluster-timeout-ms`. A receiving primary applies the
//! request for the original user's ACL, replicates it to its own replicas and answers.
//!
//! Pure parts: `message` (the wire format), `fanout` (requests in flight), `targets` (slot
//! owners), `recent` (the resharding race). Raw server calls live in `server::cluster_bus`.

pub mod fanout;
pub mod message;
pub mod recent;
pub mod remember;
pub mod targets;

use crate::args::{StatsQuery, TagScan};
use crate::config;
use crate::entry::Entry;
use crate::invalidation;
use crate::server::acl::{Access, Intent};
use crate::server::cluster_bus::{self as bus, Blocked};
use crate::server::keys::select_db;
use crate::server::reply;
use crate::state;
use crate::stats::Counters;
pub use fanout::Acc;
use fanout::{NodeId, Outcome, Pending, Started};
pub use message::Op;
use message::{Answer, Message, Reply, Request, StatWords, StatsScope, STAT_WORDS};
use redis_module::{Context, ContextFlags, RedisError, RedisResult, RedisValue};
use remember::{recent, window_ms};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use targets::Topology;

static PENDING: Mutex<Option<Pending<Blocked>>> = Mutex::new(None);
/// Requests the server could not hand to a node's link yet (a link being re-established after
/// a reconnect or a restart): retried every RETRY_EVERY while their command still waits.
static UNSENT: Mutex<Vec<Unsent>> = Mutex::new(Vec::new());
static RETRY_ARMED: AtomicBool = AtomicBool::new(false);
/// Requests that could not be handed to a link at once (INFO cache_cluster_send_retries).
static SEND_RETRIES: AtomicU64 = AtomicU64::new(0);
/// How many times TCP_NODELAY was set on a bus link (INFO cache_cluster_nodelay_sets).
static NODELAY_SET: AtomicU64 = AtomicU64::new(0);
const RETRY_EVERY: Duration = Duration::from_millis(20);
/// Bounds the queue of unsent requests (each holds its payload).
const MAX_UNSENT: usize = 30_000;

struct Unsent {
    id: u64,
    node: NodeId,
    payload: Arc<[u8]>,
}

fn pending<R>(f: impl FnOnce(&mut Pending<Blocked>) -> R) -> R {
    let mut guard = PENDING.lock().unwrap_or_else(|p| p.into_inner());
    f(guard.get_or_insert_with(Pending::default))
}

/// (cluster-wide commands in flight, recent invalidations remembered, sends retried), for
/// INFO.
pub fn sizes() -> (usize, usize, u64, u64) {
    (
        pending(|p| p.len()),
        recent(|r| r.len()),
        SEND_RETRIES.load(Ordering::Relaxed),
        NODELAY_SET.load(Ordering::Relaxed),
    )
}

/// Registers the cluster bus receiver on a cluster-enabled server (nothing otherwise), and
/// starts the timer that keeps Nagle's algorithm off the cluster bus links.
pub fn init(ctx: &Context) -> bool {
    if !bus::enabled(ctx) {
        return true;
    }
    if !bus::register_receiver(ctx) {
        return false;
    }
    ctx.create_timer(LINK_SCAN_EVERY, scan_links, ());
    true
}

/// The server leaves its outbound cluster bus links with Nagle's algorithm on (7.0, Valkey
/// 9): a request written while an earlier small message on the same link awaits its delayed
/// ACK waits up to 40 ms. Every LINK_SCAN_EVERY, LINK_SCAN_FDS descriptors are checked and the
/// links among them get TCP_NODELAY, so a new link is found within a few seconds even on a
/// server with thousands of clients, at a bounded cost per tick.
const LINK_SCAN_EVERY: Duration = Duration::from_millis(100);
const LINK_SCAN_FDS: i32 = 512;

struct LinkScan {
    next_fd: i32,
    /// The highest descriptor found open in this pass; the pass ends well past it.
    highest: i32,
    ports: Vec<u16>,
    ticks: u32,
}

static LINK_SCAN: Mutex<LinkScan> = Mutex::new(LinkScan {
    next_fd: 0,
    highest: 0,
    ports: Vec::new(),
    ticks: 0,
});

/// Descriptors past the highest open one that a pass still checks before it starts over.
const LINK_SCAN_SLACK: i32 = 256;

fn scan_links(ctx: &Context, _: ()) {
    let mut scan = LINK_SCAN.lock().unwrap_or_else(|p| p.into_inner());
    // The bus ports change as nodes join: read them again every second.
    if scan.ticks.is_multiple_of(10) {
        scan.ports = bus::bus_ports(ctx);
    }
    scan.ticks = scan.ticks.wrapping_add(1);
    let to = scan.next_fd.saturating_add(LINK_SCAN_FDS);
    let (set, highest) = bus::nodelay_links(&scan.ports, scan.next_fd, to);
    NODELAY_SET.fetch_add(set as u64, Ordering::Relaxed);
    if let Some(h) = highest {
        scan.highest = scan.highest.max(h);
    }
    if to > scan.highest.saturating_add(LINK_SCAN_SLACK) {
        scan.next_fd = 0;
        scan.highest = 0;
    } else {
        scan.next_fd = to;
    }
    drop(scan);
    ctx.create_timer(LINK_SCAN_EVERY, scan_links, ());
}

/// Where a keyless command acts.
pub enum Scope {
    /// This node only: not a cluster, LOCAL, or applied from the primary's stream or the AOF.
    Local,
    Wide(Plan),
}

pub struct Plan {
    me: NodeId,
    topology: Topology,
}

impl Plan {
    fn own(&self) -> bool {
        self.topology.owns_slots(&self.me)
    }
}

/// Decides where a command acts; an error where the cluster-wide form cannot run (MULTI,
/// scripts) or the slot map cannot be read.
pub fn scope(ctx: &Context, local: bool, name: &str) -> Result<Scope, RedisError> {
    let internal = ctx
        .get_flags()
        .intersects(ContextFlags::REPLICATED | ContextFlags::LOADING);
    if local || internal || !bus::enabled(ctx) {
        return Ok(Scope::Local);
    }
    if !bus::may_block(ctx) {
        return Err(RedisError::String(format!(
            "ERR {name} cannot run cluster-wide inside MULTI/EXEC or a script: add LOCAL to act on this node only"
        )));
    }
    let me = bus::my_id().ok_or(RedisError::Str("ERR this node has no cluster id"))?;
    let ranges =
        bus::slot_ranges(ctx).ok_or(RedisError::Str("ERR could not read the cluster slots"))?;
    Ok(Scope::Wide(Plan {
        me,
        topology: Topology::from_ranges(&ranges),
    }))
}

/// Replies with this node's result (`acc`) or, cluster-wide, sends `op` to the other slot
/// owners and blocks the client until they answer.
pub fn complete(
    ctx: &Context,
    scope: Scope,
    db: i32,
    access: &Access,
    op: Op,
    acc: Acc,
) -> RedisResult {
    let Scope::Wide(plan) = scope else {
        match fanout_done(acc) {
            Some(outcome) => reply_outcome(ctx, Some(&outcome)),
            None => reply::error(ctx, "ERR internal error"),
        }
        return Ok(RedisValue::NoReply);
    };
    let own = plan.own();
    let targets = plan.topology.others(&plan.me);
    ask(ctx, db, access, op, acc, targets, own)
}

/// A local result as an outcome.
fn fanout_done(acc: Acc) -> Option<Outcome> {
    let mut p: Pending<()> = Pending::default();
    match p.start(0, (), acc, Vec::new(), Vec::new(), true) {
        Started::Done(o) => Some(o),
        _ => None,
    }
}

/// Sends `op` to `targets` and blocks the client for their answers (replies at once if there
/// is nobody to wait for).
fn ask(
    ctx: &Context,
    db: i32,
    access: &Access,
    op: Op,
    acc: Acc,
    targets: Vec<NodeId>,
    own: bool,
) -> RedisResult {
    if pending(|p| p.len()) >= fanout::MAX_IN_FLIGHT {
        return Err(RedisError::Str(
            "ERR too many cluster-wide commands in flight",
        ));
    }
    let id = state::with(|s| s.next_random());
    let request = Request {
        id,
        db,
        user: access.user_name(),
        op,
    };
    let payload = message::encode_request(&request)
        .ok_or(RedisError::Str("ERR request too large for the cluster bus"))?;
    let mut asked = Vec::new();
    let mut missing = Vec::new();
    let mut unsent = Vec::new();
    for node in targets {
        // A node marked failing is not waited for (it is named in the reply), but still told:
        // if it comes back, it applies the invalidation too.
        let failing = bus::failing(ctx, &node);
        let sent = bus::send(ctx, &node, &payload);
        if failing {
            missing.push(node);
        } else {
            if !sent {
                unsent.push(node);
            }
            asked.push(node);
        }
    }
    if asked.is_empty() {
        let mut alone: Pending<()> = Pending::default();
        if let Started::Done(outcome) = alone.start(id, (), acc, asked, missing, own) {
            reply_outcome(ctx, Some(&outcome));
        }
        return Ok(RedisValue::NoReply);
    }
    let Some(bc) = bus::block(ctx, config::cluster_timeout_ms()) else {
        return Err(RedisError::Str("ERR could not block the client"));
    };
    match pending(|p| p.start(id, bc, acc, asked, missing, own)) {
        Started::Waiting => retry_later(ctx, id, unsent, &payload),
        Started::Done(outcome) => bus::unblock(bc, Some(outcome)),
        Started::Refused => bus::unblock(bc, None),
    }
    Ok(RedisValue::NoReply)
}

/// Queues the requests for `nodes` that could not be sent (their command waits on until its
/// timeout; a retry that gets through in time still completes it).
fn retry_later(ctx: &Context, id: u64, nodes: Vec<NodeId>, payload: &[u8]) {
    if nodes.is_empty() {
        return;
    }
    SEND_RETRIES.fetch_add(nodes.len() as u64, Ordering::Relaxed);
    let payload: Arc<[u8]> = Arc::from(payload);
    let mut queue = UNSENT.lock().unwrap_or_else(|p| p.into_inner());
    for node in nodes {
        if queue.len() < MAX_UNSENT {
            queue.push(Unsent {
                id,
                node,
                payload: payload.clone(),
            });
        }
    }
    drop(queue);
    if !RETRY_ARMED.swap(true, Ordering::Relaxed) {
        ctx.create_timer(RETRY_EVERY, retry_unsent, ());
    }
}

fn retry_unsent(ctx: &Context, _: ()) {
    let queue = std::mem::take(&mut *UNSENT.lock().unwrap_or_else(|p| p.into_inner()));
    let left: Vec<Unsent> = queue
        .into_iter()
        .filter(|u| pending(|p| p.awaits(u.id, &u.node)) && !bus::send(ctx, &u.node, &u.payload))
        .collect();
    let mut queue = UNSENT.lock().unwrap_or_else(|p| p.into_inner());
    queue.extend(left);
    let again = !queue.is_empty();
    drop(queue);
    RETRY_ARMED.store(again, Ordering::Relaxed);
    if again {
        ctx.create_timer(RETRY_EVERY, retry_unsent, ());
    }
}

/// Replies to a client with what its command gathered.
pub fn reply_outcome(ctx: &Context, outcome: Option<&Outcome>) {
    let Some(outcome) = outcome else {
        reply::error(ctx, "ERR too many cluster-wide commands in flight");
        return;
    };
    match outcome {
        Outcome::Count(n) => reply::int(ctx, *n),
        Outcome::Stats(words) => {
            let (c, entries, tags) = from_words(words);
            invalidation::reply_fields(ctx, &crate::stats::stat_fields(&c, entries, tags));
        }
        Outcome::Namespaces(all) => {
            reply::map(ctx, all.len());
            for (name, words) in all {
                let (c, entries, _) = from_words(words);
                reply::bulk(ctx, name);
                invalidation::reply_fields(ctx, &crate::stats::stat_fields(&c, entries, 0));
            }
        }
        Outcome::Reset => reply::simple(ctx, c"OK"),
        Outcome::Scan { next, keys } => invalidation::reply_scan(ctx, *next, keys),
        Outcome::Incomplete {
            acc,
            answered,
            total,
            missing,
        } => reply::error(ctx, &incomplete_text(acc, *answered, *total, missing)),
    }
}

/// The `INCOMPLETE` error: what was done, and which nodes did not answer.
pub fn incomplete_text(acc: &Acc, answered: usize, total: usize, missing: &[NodeId]) -> String {
    let ids: Vec<String> = missing
        .iter()
        .map(|id| String::from_utf8_lossy(id).into_owned())
        .collect();
    let ids = ids.join(" ");
    match acc {
        Acc::Count(n) => format!(
            "INCOMPLETE {n} entries invalidated on {answered} of {total} primaries; no answer from {ids}"
        ),
        Acc::Stats(_) | Acc::Namespaces(_) => format!(
            "INCOMPLETE counters of {answered} of {total} primaries; no answer from {ids}"
        ),
        Acc::Reset => format!(
            "INCOMPLETE counters reset on {answered} of {total} primaries; no answer from {ids}"
        ),
        Acc::Scan { .. } => {
            format!("INCOMPLETE no answer from {ids}; retry with the same cursor")
        }
    }
}

/// A blocked client's timeout: reply with what was gathered, then release its handle.
pub fn on_timeout(ctx: &Context, bc: Blocked) {
    match pending(|p| p.expire(bc)) {
        Some(outcome) => {
            reply_outcome(ctx, Some(&outcome));
            bus::unblock(bc, None);
        }
        // Already handed back (its answer came in the same event-loop turn): the server
        // does not call this then; answer something rather than nothing.
        None => reply::error(ctx, "ERR cluster-wide command timed out"),
    }
}

/// A blocked client went away: forget it and release its handle (once).
pub fn on_disconnect(bc: Blocked) {
    if pending(|p| p.forget(bc)) {
        bus::unblock(bc, None);
    }
}

/// A message from node `from`.
pub fn on_message(ctx: &Context, from: &NodeId, payload: &[u8]) {
    match message::decode(payload) {
        Ok(Message::Request(request)) => {
            let id = request.id;
            let answer = serve(ctx, request);
            let reply = Reply { id, answer };
            let bytes = message::encode_reply(&reply).or_else(|| {
                message::encode_reply(&Reply {
                    id,
                    answer: Answer::Error("ERR reply too large for the cluster bus".into()),
                })
            });
            if let Some(bytes) = bytes {
                bus::send(ctx, from, &bytes);
            }
        }
        Ok(Message::Reply(Reply { id, answer })) => {
            if let Some((bc, outcome)) = pending(|p| p.answer(id, from, answer)) {
                bus::unblock(bc, Some(outcome));
            }
        }
        Err(message::DecodeError::NotOurs) => {}
        Err(message::DecodeError::Version(v)) => ctx.log_warning(&format!(
            "cache: ignored a cluster message of version {v} (this build speaks {})",
            message::VERSION
        )),
        Err(message::DecodeError::Malformed) => {
            ctx.log_warning("cache: ignored a malformed cluster message")
        }
    }
}

/// Applies a request from another node on this one.
fn serve(ctx: &Context, request: Request) -> Answer {
    let is_primary = ctx.get_flags().contains(ContextFlags::MASTER);
    let writes = matches!(request.op, Op::Invalidate { .. } | Op::InvalidateTag { .. });
    if writes && !is_primary {
        return Answer::Error("READONLY not a primary".into());
    }
    if !select_db(ctx, request.db) {
        return Answer::Error("ERR DB index is out of range".into());
    }
    let access = Access::for_user(ctx, request.user.as_deref());
    let db = request.db;
    match request.op {
        // Replicated explicitly: a call made from a cluster bus receiver is not by itself.
        Op::Invalidate { pattern, soft } => {
            let (n, touched) =
                invalidation::invalidate_pattern(ctx, db, &pattern, soft, &access, false);
            let command = Some((c"CACHE.INVALIDATE", pattern.as_slice()));
            invalidation::replicate_invalidation(ctx, &access, command, soft, &touched);
            Answer::Count(n)
        }
        Op::InvalidateTag { tag, soft } => {
            let (n, touched) = invalidation::invalidate_tags(ctx, db, &tag, soft, &access, false);
            let command = Some((c"CACHE.INVALIDATETAG", tag.as_slice()));
            invalidation::replicate_invalidation(ctx, &access, command, soft, &touched);
            Answer::Count(n)
        }
        Op::Stats(scope) => {
            if !access.covers_all(ctx) {
                return Answer::Error("NOPERM".into());
            }
            local_stats(db, &scope)
        }
        Op::TagScan {
            tag,
            cursor,
            count,
            pattern,
        } => {
            let (next, keys) = invalidation::tag_scan_local(
                ctx,
                db,
                &access,
                &tag,
                cursor,
                count as usize,
                pattern.as_deref(),
            );
            Answer::Scan {
                next,
                keys: keys.iter().map(|k| k.to_vec()).collect(),
            }
        }
    }
}

pub fn stats_scope(query: &StatsQuery) -> StatsScope {
    match query {
        StatsQuery::Totals => StatsScope::Totals,
        StatsQuery::Namespace(name) => StatsScope::Namespace(name.to_vec()),
        StatsQuery::Namespaces => StatsScope::Namespaces,
        StatsQuery::Reset => StatsScope::Reset,
    }
}

/// This node's part of a cluster-wide STATS: its counters if it owns slots (a replica's
/// own reads are not the cluster's), nothing otherwise. RESET resets here either way.
pub fn local_stats_acc(db: i32, wanted: &StatsScope, scope: &Scope) -> Acc {
    let own = matches!(scope, Scope::Wide(plan) if plan.own());
    let answer = local_stats(db, wanted);
    match (answer, own) {
        (Answer::Reset, _) => Acc::Reset,
        (Answer::Stats(w), true) => Acc::Stats(w),
        (Answer::Namespaces(all), true) => Acc::Namespaces(all.into_iter().collect()),
        (Answer::Namespaces(_), false) => Acc::Namespaces(BTreeMap::new()),
        _ => Acc::Stats([0; STAT_WORDS]),
    }
}

fn local_stats(db: i32, wanted: &StatsScope) -> Answer {
    state::with(|s| {
        let d = s.db(db);
        match wanted {
            StatsScope::Totals => Answer::Stats(to_words(
                &d.stats().total,
                d.entries() as u64,
                d.tag_count() as u64,
            )),
            StatsScope::Namespace(name) => {
                let ns = d.stats().namespace(name);
                Answer::Stats(to_words(&ns.counters, ns.entries, 0))
            }
            StatsScope::Namespaces => Answer::Namespaces(
                d.stats()
                    .namespaces()
                    .into_iter()
                    .map(|(name, ns)| (name.to_vec(), to_words(&ns.counters, ns.entries, 0)))
                    .collect(),
            ),
            StatsScope::Reset => {
                d.stats_mut().reset();
                Answer::Reset
            }
        }
    })
}

fn to_words(c: &Counters, entries: u64, tags: u64) -> StatWords {
    [
        c.hits,
        c.stale_hits,
        c.misses,
        c.pending,
        c.sets,
        c.sets_refused,
        c.leases_granted,
        c.invalidations,
        c.invalidated,
        c.waits,
        c.wait_woken_by_set,
        c.wait_handovers,
        c.wait_timeouts,
        c.early_refreshes,
        entries,
        tags,
    ]
}

fn from_words(w: &StatWords) -> (Counters, u64, u64) {
    let c = Counters {
        hits: w[0],
        stale_hits: w[1],
        misses: w[2],
        pending: w[3],
        sets: w[4],
        sets_refused: w[5],
        leases_granted: w[6],
        invalidations: w[7],
        invalidated: w[8],
        waits: w[9],
        wait_woken_by_set: w[10],
        wait_handovers: w[11],
        wait_timeouts: w[12],
        early_refreshes: w[13],
    };
    (c, w[14], w[15])
}

/// Cluster-wide TAGSCAN: the cursor names a shard (in slot order) and that shard's own
/// cursor; one call reads one shard, here or on its primary.
pub fn tag_scan(ctx: &Context, plan: Plan, db: i32, access: &Access, cmd: &TagScan) -> RedisResult {
    let (shard, cursor) = fanout::split_cursor(cmd.cursor);
    let shards = plan.topology.shards.len();
    if shards == 0 {
        invalidation::reply_scan::<&[u8]>(ctx, 0, &[]);
        return Ok(RedisValue::NoReply);
    }
    let Some(target) = plan.topology.shards.get(shard).copied() else {
        return Err(crate::error::invalid_cursor());
    };
    if target == plan.me {
        let (next, keys) =
            invalidation::tag_scan_local(ctx, db, access, cmd.tag, cursor, cmd.count, cmd.pattern);
        let next = fanout::join_cursor(shard, shards, next)
            .ok_or(RedisError::Str("ERR cursor out of range"))?;
        invalidation::reply_scan(ctx, next, &keys);
        return Ok(RedisValue::NoReply);
    }
    let op = Op::TagScan {
        tag: cmd.tag.to_vec(),
        cursor,
        count: u32::try_from(cmd.count).unwrap_or(u32::MAX),
        pattern: cmd.pattern.map(<[u8]>::to_vec),
    };
    let acc = Acc::Scan {
        shard,
        shards,
        page: None,
    };
    ask(ctx, db, access, op, acc, vec![target], false)
}

/// An entry arrived from another node (RESTORE, MIGRATE): if a recent invalidation covers
/// it, it arrives invalidated (dead, or stale for SOFT), as it would have been had it stayed.
pub fn on_arrival(ctx: &Context, db: i32, key: &[u8], entry: &mut Entry, now: i64) {
    let users: Vec<(bool, i64, Option<Vec<u8>>)> = recent(|r| {
        if r.is_empty() {
            return Vec::new();
        }
        let tags: Vec<&[u8]> = entry.tags().collect();
        r.covering(db, key, tags.iter().copied(), now, window_ms())
            .map(|rec| (rec.soft, rec.at, rec.user.clone()))
            .collect()
    });
    for (soft, at, user) in users {
        if let Some(name) = user {
            if !Access::for_user(ctx, Some(&name)).allows(ctx, key, Intent::Invalidate) {
                continue;
            }
        }
        if soft {
            entry.make_stale(at);
        } else {
            entry.set_dead(true);
        }
    }
}
