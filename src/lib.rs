//! Server-side cache toolkit for Redis: tagged entries, leases, stale-while-revalidate,
//! pattern and tag invalidation without scanning the keyspace, and per-namespace stats.
