#!/usr/bin/env node
// get-or-compute with the rediscache module, from Node.js (node-redis, the `redis` npm package).
//
// Copy `Cache` into your application. The rest of this file is a scripted
// scenario that checks every reply the module can give, so it doubles as an
// integration test:
//
//   npm ci
//   REDIS_PORT=6379 node cache_example.js            # RESP2
//   REDIS_PORT=6379 RESP=3 node cache_example.js     # RESP3 (or --resp3)
//
// Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_DB (15), RESP (2).
// WARNING: the scenario empties database REDIS_DB (FLUSHDB). Use a scratch server.
// Exit status 0 when every check passed, 1 otherwise.
//
// Why node-redis and not ioredis: ioredis only speaks RESP2 (its parser
// rejects RESP3 maps); node-redis v5+ speaks both, selected with `RESP: 3`.
'use strict';
const { createClient } = require('redis');

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Cache-aside on top of CACHE.GETORMARK / CACHE.SETTAGGED. Only one client at a
// time computes a missing or stale value (it holds the lease); the others block
// in GETORMARK ... WAIT until it is stored, or are served the stale value.
class Cache {
  constructor(client, runRefresh) {
    this.client = client;
    // How to run a refresh that must not delay the caller (STALE with a token,
    // or HIT with a token = early refresh). Awaited inline here so the demo is
    // deterministic; in a web app use e.g. `(fn) => { fn().catch(log); }` so
    // the response goes out first.
    this.runRefresh = runRefresh || ((fn) => fn());
    this.trace = []; // what the last call did, for the demo's checks
  }

  // Returns the cached value of `key`, computing it with `await compute()` if needed.
  // ttl: fresh lifetime (s); stale: how long after that a stale value may still be
  // served (s); waitMs: how long to block while another client computes;
  // retries: how many more times to ask after a PENDING.
  async getOrCompute(key, ttl, tags, compute, { stale = 0, waitMs = 2000, leaseMs = 0, retries = 3 } = {}) {
    this.trace = [];
    const args = ['CACHE.GETORMARK', key];
    if (leaseMs) args.push('LEASE', String(leaseMs));
    if (waitMs) args.push('WAIT', String(waitMs));
    let backoff = 50;
    for (let attempt = 0; attempt <= retries; attempt++) {
      const [state, value, token] = await this.client.sendCommand(args);
      this.trace.push(state);
      if (state === 'HIT') {
        if (token !== null) { // chosen to refresh early: serve, then refresh
          this.trace.push('early-refresh');
          await this.runRefresh(() => this.#store(key, ttl, tags, compute, stale, token));
        }
        return value;
      }
      if (state === 'STALE') {
        if (token !== null) { // we hold the lease: serve stale, refresh
          this.trace.push('refresh');
          await this.runRefresh(() => this.#store(key, ttl, tags, compute, stale, token));
        }
        return value; // without a token another client is refreshing it
      }
      if (state === 'MISS') return this.#store(key, ttl, tags, compute, stale, token);
      // PENDING: another client is computing and WAIT ran out. Back off, ask again.
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 1000);
    }
    // Still nobody stored it: compute ourselves rather than fail, but don't cache.
    this.trace.push('gave-up');
    return compute();
  }

  async #store(key, ttl, tags, compute, stale, token) {
    const started = Date.now();
    const value = await compute();
    const cost = Math.max(1, Date.now() - started);
    const cmd = ['CACHE.SETTAGGED', key, value, 'EX', String(ttl)];
    if (stale) cmd.push('STALE', String(stale));
    cmd.push('COST', String(cost), 'LEASE', token);
    if (tags.length) cmd.push('TAGS', ...tags);
    if ((await this.client.sendCommand(cmd)) === null) {
      // The lease was voided: the data changed (an invalidation) while we
      // computed. Our value may predate that change, so don't cache it; still
      // answer this request with it.
      this.trace.push('not-stored');
    } else {
      this.trace.push('stored');
    }
    return value;
  }
}

// CACHE.STATS as a plain object: RESP3 replies with a map, RESP2 with a flat field/value array.
async function cacheStats(client, namespace) {
  const reply = await client.sendCommand(['CACHE.STATS', ...(namespace ? ['NAMESPACE', namespace] : [])]);
  if (!Array.isArray(reply)) return reply instanceof Map ? Object.fromEntries(reply) : reply;
  const stats = {};
  for (let i = 0; i < reply.length; i += 2) stats[reply[i]] = reply[i + 1];
  return stats;
}

// --------------------------------------------------------------------------
// The scenario: a tiny shop whose "database" is an object, and its cache.
// --------------------------------------------------------------------------

const failures = [];
function check(what, got, expected) {
  const ok = JSON.stringify(got) === JSON.stringify(expected);
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${JSON.stringify(got)}${ok ? '' : ` (expected ${JSON.stringify(expected)})`}`);
  if (!ok) failures.push(what);
}

async function main() {
  const host = process.env.REDIS_HOST || '127.0.0.1';
  const port = Number(process.env.REDIS_PORT || 6379);
  const db = Number(process.env.REDIS_DB || 15);
  const RESP = process.env.RESP === '3' || process.argv.includes('--resp3') ? 3 : 2;
  const connect = async () => {
    const c = createClient({ socket: { host, port }, database: db, RESP });
    c.on('error', (e) => console.error('redis client error:', e.message));
    await c.connect();
    return c;
  };
  const r = await connect(); // this application server
  const other = await connect(); // another application server sharing the cache
  const cache = new Cache(r);
  const version = require('redis/package.json').version;
  const hello = await r.sendCommand(['HELLO']);
  console.log(`node node-redis ${version}: ${host}:${port} db ${db}, RESP${RESP === 3 ? hello.proto : 2}`);
  await r.sendCommand(['FLUSHDB']);
  await r.sendCommand(['CACHE.STATS', 'RESET']);

  const products = { 1: 'Lamp v1', 2: 'Desk v1', 3: 'Chair v1' };
  const backendCalls = [];
  const loadProduct = (id) => async () => { backendCalls.push(id); return products[id]; };
  const loadPage = async () => { backendCalls.push('page'); return [1, 2, 3].map((id) => products[id]).join(','); };
  // Write path: change the database, then drop what showed the old data.
  const updateProduct = async (id, name) => {
    products[id] = name;
    return [await r.sendCommand(['CACHE.INVALIDATETAG', `product:${id}`]),
      await r.sendCommand(['CACHE.INVALIDATETAG', 'products'])];
  };
  const product = (id, compute = loadProduct(id), opts = { stale: 30 }) =>
    cache.getOrCompute(`product:${id}`, 60, [`product:${id}`, 'products'], compute, opts);

  console.log('1. first read computes (MISS), second is served from cache (HIT)');
  let v = await product(1);
  check('MISS value', v, 'Lamp v1');
  check('MISS trace', cache.trace, ['MISS', 'stored']);
  v = await product(1);
  check('HIT value', v, 'Lamp v1');
  check('HIT trace', cache.trace, ['HIT']);
  check('backend calls', backendCalls, [1]);
  v = await cache.getOrCompute('products:page:1', 60, ['products'], loadPage, { stale: 30 });
  check('list page', v, 'Lamp v1,Desk v1,Chair v1');

  console.log('2. a write invalidates by tag: the product and the list page');
  check('INVALIDATETAG product:1, products', await updateProduct(1, 'Lamp v2'), [1, 1]);
  v = await product(1);
  check('re-read after write', [v, cache.trace], ['Lamp v2', ['MISS', 'stored']]);
  v = await cache.getOrCompute('products:page:1', 60, ['products'], loadPage, { stale: 30 });
  check('list page after write', [v, cache.trace], ['Lamp v2,Desk v1,Chair v1', ['MISS', 'stored']]);

  console.log('3. soft invalidation after a batch import: serve STALE once, refresh behind it');
  products[2] = 'Desk v2';
  check('INVALIDATETAG products SOFT', await r.sendCommand(['CACHE.INVALIDATETAG', 'products', 'SOFT']), 2);
  v = await cache.getOrCompute('products:page:1', 60, ['products'], loadPage, { stale: 30 });
  check('stale page served', v, 'Lamp v2,Desk v1,Chair v1');
  check('STALE trace', cache.trace, ['STALE', 'refresh', 'stored']);
  v = await cache.getOrCompute('products:page:1', 60, ['products'], loadPage, { stale: 30 });
  check('refreshed page', [v, cache.trace], ['Lamp v2,Desk v2,Chair v1', ['HIT']]);

  console.log('4. STALE without a token: another server is refreshing, we just serve the stale value');
  let [state, value, token] = await other.sendCommand(['CACHE.GETORMARK', 'product:1']);
  check('other server takes the refresh lease', [state, value, token !== null], ['STALE', 'Lamp v2', true]);
  const calls = backendCalls.length;
  v = await product(1);
  check('stale served, no lease', [v, cache.trace], ['Lamp v2', ['STALE']]);
  check('no backend call', backendCalls.length, calls);
  check('other server stores with its lease', await other.sendCommand(['CACHE.SETTAGGED', 'product:1', 'Lamp v2',
    'EX', '60', 'STALE', '30', 'LEASE', token, 'TAGS', 'product:1', 'products']), 'OK');
  v = await product(1);
  check('fresh again', [v, cache.trace], ['Lamp v2', ['HIT']]);

  console.log('5. a write during a computation voids the lease: the old value is not cached');
  const slowLoadDesk = async () => {
    const old = await loadProduct(2)();
    products[2] = 'Desk v3'; // meanwhile, someone updates the desk ...
    await other.sendCommand(['CACHE.INVALIDATETAG', 'product:2']); // ... and invalidates it
    return old;
  };
  // leaseMs 300: keep a lease close to what the computation takes, so a client
  // that dies holding it delays the others little. (This module also frees the
  // key at once when it refuses a set; WAIT covers either way.)
  v = await product(2, slowLoadDesk, { leaseMs: 300 });
  check('computed value still returned', [v, cache.trace], ['Desk v2', ['MISS', 'not-stored']]);
  v = await product(2, loadProduct(2), { waitMs: 5000 });
  check('next read computes the new value', [v, cache.trace], ['Desk v3', ['MISS', 'stored']]);

  console.log('6. WAIT: many readers, one computation; the others block until it is stored');
  [state, , token] = await other.sendCommand(['CACHE.GETORMARK', 'report:sales:daily']);
  check('other server computes the report', [state, token !== null], ['MISS', true]);
  const finishing = sleep(300).then(() => other.sendCommand(['CACHE.SETTAGGED', 'report:sales:daily', 'report-42',
    'EX', '20', 'COST', '300', 'LEASE', token, 'TAGS', 'reports']));
  let started = Date.now();
  const never = async () => { failures.push('computed a report someone else was computing'); return 'wrong'; };
  v = await cache.getOrCompute('report:sales:daily', 20, ['reports'], never, { waitMs: 5000 });
  let waited = Date.now() - started;
  await finishing;
  check('woken by the set', [v, cache.trace], ['report-42', ['HIT']]);
  check('blocked until then (200ms..3s)', waited >= 200 && waited < 3000, true);

  console.log('7. WAIT: the computing server dies; its lease lapses and a waiter takes over');
  let deadToken;
  [state, , deadToken] = await other.sendCommand(['CACHE.GETORMARK', 'report:sales:weekly', 'LEASE', '300']);
  check('other server takes a 300 ms lease', state, 'MISS');
  started = Date.now();
  v = await cache.getOrCompute('report:sales:weekly', 20, ['reports'], async () => 'weekly-7', { waitMs: 5000 });
  waited = Date.now() - started;
  check('handed the lease, computed', [v, cache.trace], ['weekly-7', ['MISS', 'stored']]);
  check('after the lapse (200ms..3s)', waited >= 200 && waited < 3000, true);
  check("the late server's set is refused", await other.sendCommand(['CACHE.SETTAGGED', 'report:sales:weekly',
    'stale', 'EX', '20', 'LEASE', deadToken]), null);

  console.log('8. PENDING: bounded retries with backoff, then compute without caching');
  [state] = await other.sendCommand(['CACHE.GETORMARK', 'report:sales:monthly', 'LEASE', '10000']);
  check('other server holds a 10 s lease', state, 'MISS');
  v = await cache.getOrCompute('report:sales:monthly', 20, ['reports'], async () => 'monthly-1', { waitMs: 100, retries: 2 });
  check('gave up after 3 PENDING', [v, cache.trace], ['monthly-1', ['PENDING', 'PENDING', 'PENDING', 'gave-up']]);

  console.log("9. early refresh: a HIT with a token means 'serve this, and refresh it now'");
  // An entry that took long to compute (COST) and expires soon is refreshed
  // early by one reader (XFetch), so it never goes cold. Seeded by hand here.
  products[3] = 'Chair v2';
  for (let i = 0; i < 5; i++) { // the choice is random, but near-certain with these numbers
    await r.sendCommand(['CACHE.SETTAGGED', 'product:3', 'Chair v1', 'PX', '2000', 'STALE', '10',
      'COST', '600000', 'TAGS', 'product:3', 'products']);
    v = await product(3, loadProduct(3), {});
    if (cache.trace.length !== 1) break;
  }
  check('served the current value', v, 'Chair v1');
  check('early refresh trace', cache.trace, ['HIT', 'early-refresh', 'stored']);
  v = await product(3, loadProduct(3), {});
  check('refreshed value', [v, cache.trace], ['Chair v2', ['HIT']]);

  console.log('10. CACHE.STATS: the server counts what it answered');
  await r.sendCommand(['FLUSHDB']);
  await r.sendCommand(['CACHE.STATS', 'RESET']);
  for (let i = 0; i < 3; i++) { // MISS, HIT, HIT
    await cache.getOrCompute('stats:demo', 60, ['stats', 'demo'], async () => 'x', { stale: 30 });
  }
  check('CACHE.GET of a missing key', await r.sendCommand(['CACHE.GET', 'stats:none']), null);
  check('soft invalidation', await r.sendCommand(['CACHE.INVALIDATETAG', 'demo', 'SOFT']), 1);
  await cache.getOrCompute('stats:demo', 60, ['stats', 'demo'], async () => 'y', { stale: 30 }); // STALE + refresh
  const stats = await cacheStats(r);
  console.log(`  CACHE.STATS (RESP${RESP}): ${JSON.stringify(stats)}`);
  const expected = { hits: 2, stale_hits: 1, misses: 2, pending: 0, sets: 2, sets_refused: 0,
    leases_granted: 2, invalidations: 1, invalidated: 1, entries: 1, tags: 2 };
  check('counters', Object.fromEntries(Object.keys(expected).map((f) => [f, stats[f]])), expected);
  check('hit_ratio (3 of 5 lookups)', Math.round(Number(stats.hit_ratio) * 1e6) / 1e6, 0.6);
  check('per namespace', (await cacheStats(r, 'stats')).hits, 2);

  await r.close();
  await other.close();
  if (failures.length) {
    console.log(`node RESP${RESP}: ${failures.length} check(s) failed: ${failures.join(', ')}`);
    return 1;
  }
  console.log(`node RESP${RESP}: all checks passed`);
  return 0;
}

main().then((code) => process.exit(code), (e) => {
  console.log(`node: error: ${e && e.stack ? e.stack : e}`);
  process.exit(1);
});
