//! `INFO cache`: totals over all databases as `cache_<field>` lines, then one
//! `cache_db<N>:field=value,...` line per database that has entries or traffic.

use crate::server::info::InfoSection;
use crate::state;
use crate::stats::{stat_fields, Counters, StatValue};

pub struct Info;

impl InfoSection for Info {
    fn fields() -> Vec<(String, String)> {
        fields()
    }
}

fn fields() -> Vec<(String, String)> {
    let (total, entries, tags, index_bytes, per_db) = state::with(|s| {
        let mut total = Counters::default();
        let (mut entries, mut tags, mut bytes) = (0u64, 0u64, 0u64);
        let mut per_db = Vec::new();
        for (id, db) in s.dbs() {
            let c = &db.stats().total;
            let (e, t) = (db.entries() as u64, db.tag_count() as u64);
            if e == 0 && t == 0 && *c == Counters::default() {
                continue;
            }
            add_counters(&mut total, c);
            entries += e;
            tags += t;
            bytes += db.index_bytes() as u64;
            let line: Vec<String> = stat_fields(c, e, t)
                .iter()
                .map(|(name, value)| format!("{name}={}", text(value)))
                .collect();
            per_db.push((format!("db{id}"), line.join(",")));
        }
        (total, entries, tags, bytes, per_db)
    });
    let mut out: Vec<(String, String)> = stat_fields(&total, entries, tags)
        .iter()
        .map(|(name, value)| (name.to_string(), text(value)))
        .collect();
    out.push(("index_bytes".to_string(), index_bytes.to_string()));
    let (in_flight, recent, retries, nodelay) = crate::cluster::sizes();
    for (name, value) in [
        ("cluster_in_flight", in_flight as u64),
        ("cluster_recent_invalidations", recent as u64),
        ("cluster_send_retries", retries),
        ("cluster_nodelay_sets", nodelay),
    ] {
        out.push((name.to_string(), value.to_string()));
    }
    out.extend(per_db);
    out
}

fn text(value: &StatValue) -> String {
    match value {
        StatValue::Int(n) => n.to_string(),
        StatValue::Text(t) => t.clone(),
    }
}

fn add_counters(into: &mut Counters, c: &Counters) {
    into.hits += c.hits;
    into.stale_hits += c.stale_hits;
    into.misses += c.misses;
    into.pending += c.pending;
    into.sets += c.sets;
    into.sets_refused += c.sets_refused;
    into.leases_granted += c.leases_granted;
    into.invalidations += c.invalidations;
    into.invalidated += c.invalidated;
    into.waits += c.waits;
    into.wait_woken_by_set += c.wait_woken_by_set;
    into.wait_handovers += c.wait_handovers;
    into.wait_timeouts += c.wait_timeouts;
    into.early_refreshes += c.early_refreshes;
}
