'use strict';
// Cache against a real redis-server with the module (node:test, CommonJS).
const test = require('node:test');
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const { Cache } = require('..');
const { startServer } = require('./server');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let srv;
let raw; // another application server sharing the cache, speaking raw commands
const caches = [];
const open = (opts, db = 0) => {
  const c = new Cache(`${srv.url}/${db}`, opts);
  caches.push(c);
  return c;
};

test.before(async () => {
  srv = await startServer();
  raw = createClient({ url: srv.url });
  raw.on('error', () => {});
  await raw.connect();
});
test.after(async () => {
  for (const c of caches) await c.close();
  await raw.close();
  await srv.stop();
});
test.beforeEach(async () => {
  await raw.sendCommand(['FLUSHDB']);
  await raw.sendCommand(['CACHE.STATS', 'RESET']);
});

// A computation that takes `ms` and counts its calls.
function slow(ms, value) {
  const f = async () => { f.calls++; await sleep(ms); return typeof value === 'function' ? value(f.calls) : value; };
  f.calls = 0;
  return f;
}
const count = (results) => results.reduce((a, r) => ({ ...a, [r.state]: (a[r.state] || 0) + 1 }), {});

test.describe('herd: 200 concurrent callers of one missing key, computation 200 ms', () => {
  test.it('one Cache (coalesced in the process): exactly 1 computation', async () => {
    const cache = open({ ttl: 30 });
    const compute = slow(200, { report: 1 });
    const results = await Promise.all(Array.from({ length: 200 }, () => cache.getOrComputeResult('report:herd:1', compute)));
    assert.equal(compute.calls, 1);
    assert.ok(results.every((r) => r.value.report === 1));
    const stats = await cache.stats();
    assert.equal(stats.leases_granted, 1);
    assert.equal(stats.sets, 1);
  });

  test.it('10 Caches on their own connections, 20 callers each (leases + WAIT): exactly 1 computation', async () => {
    const servers = Array.from({ length: 10 }, () => open({ ttl: 30 }));
    const compute = slow(200, 'r');
    const results = await Promise.all(Array.from({ length: 200 }, (_, i) => servers[i % 10].getOrComputeResult('report:herd:2', compute)));
    assert.equal(compute.calls, 1);
    assert.ok(results.every((r) => r.value === 'r'));
    assert.deepEqual(count(results), { MISS: 20, HIT: 180 }); // 20 callers share the MISS
    const stats = await servers[0].stats();
    assert.equal(stats.misses, 1);
    assert.equal(stats.leases_granted, 1);
  });

  test.it('one Cache without coalescing: 200 GETORMARKs, exactly 1 computation', async () => {
    const cache = open({ ttl: 30, coalesce: false });
    const compute = slow(200, 'r');
    const results = await Promise.all(Array.from({ length: 200 }, () => cache.getOrComputeResult('report:herd:3', compute)));
    assert.equal(compute.calls, 1);
    assert.deepEqual(count(results), { MISS: 1, HIT: 199 });
  });
});

test.describe('leases', () => {
  test.it('WAIT: woken by another server\'s set, no computation here', async () => {
    const cache = open({ ttl: 30, waitMs: 5000 });
    const [state, , token] = await raw.sendCommand(['CACHE.GETORMARK', 'report:w']);
    assert.equal(state, 'MISS');
    setTimeout(() => raw.sendCommand(['CACHE.SETTAGGED', 'report:w', '"theirs"', 'EX', '30', 'LEASE', token]), 300);
    const t0 = Date.now();
    const never = slow(0, 'mine');
    const r = await cache.getOrComputeResult('report:w', never);
    assert.equal(never.calls, 0);
    assert.equal(r.state, 'HIT');
    assert.equal(r.value, 'theirs');
    assert.ok(Date.now() - t0 >= 250, 'blocked until the set');
  });

  test.it('WAIT longer than node-redis\'s own 5 s command timeout', async () => {
    const cache = open({ ttl: 30, waitMs: 8000 });
    const [, , token] = await raw.sendCommand(['CACHE.GETORMARK', 'report:long', 'LEASE', '20000']);
    setTimeout(() => raw.sendCommand(['CACHE.SETTAGGED', 'report:long', '"built"', 'EX', '30', 'LEASE', token]), 5600);
    const r = await cache.getOrComputeResult('report:long', async () => assert.fail('computed'));
    assert.deepEqual([r.state, r.value], ['HIT', 'built']);
  });

  test.it('PENDING beyond waitMs: bounded, then computed without caching', async () => {
    const cache = open({ ttl: 30, waitMs: 300 });
    await raw.sendCommand(['CACHE.GETORMARK', 'report:p', 'LEASE', '10000']);
    const uncached = [];
    cache.on('uncached', (e) => uncached.push(e));
    const t0 = Date.now();
    const r = await cache.getOrComputeResult('report:p', async () => 'mine');
    assert.equal(r.state, 'UNCACHED');
    assert.equal(r.reason, 'pending');
    assert.equal(r.value, 'mine');
    assert.ok(Date.now() - t0 >= 250);
    assert.deepEqual(uncached, [{ key: 'report:p', reason: 'pending' }]);
    assert.equal(await raw.sendCommand(['CACHE.GET', 'report:p']), null, 'not cached');
  });

  test.it('an invalidation during the computation voids the lease: the value is returned, not stored', async () => {
    const cache = open({ ttl: 30, tags: ['product:2'] });
    const r = await cache.getOrComputeResult('product:2', async () => {
      await raw.sendCommand(['CACHE.INVALIDATETAG', 'product:2']);
      return 'old';
    });
    assert.deepEqual([r.state, r.value, r.stored], ['MISS', 'old', false]);
    const r2 = await cache.getOrComputeResult('product:2', async () => 'new');
    assert.deepEqual([r2.state, r2.value, r2.stored], ['MISS', 'new', true]);
    assert.equal((await cache.stats()).sets_refused, 1);
  });

  test.it('a computation that throws with no stale value rejects (to every coalesced caller)', async () => {
    const cache = open({ ttl: 30 });
    const boom = async () => { await sleep(50); throw new Error('backend down'); };
    const results = await Promise.allSettled([1, 2, 3].map(() => cache.getOrCompute('report:boom', boom)));
    assert.ok(results.every((r) => r.status === 'rejected' && r.reason.message === 'backend down'));
  });
});

test.describe('stale-while-revalidate and early refresh', () => {
  test.it('soft invalidation: STALE served at once, refreshed off the caller\'s path, then HIT', async () => {
    const cache = open({ ttl: 30, stale: 60, tags: ['analytics'] });
    let version = 1;
    const compute = async () => { await sleep(100); return `v${version}`; };
    assert.equal(await cache.getOrCompute('analytics:a', compute), 'v1');
    version = 2;
    assert.equal(await cache.softInvalidateTags(['analytics']), 1);
    const t0 = Date.now();
    const r = await cache.getOrComputeResult('analytics:a', compute);
    assert.ok(Date.now() - t0 < 100, 'did not wait for the refresh');
    assert.deepEqual([r.state, r.value, r.refreshing], ['STALE', 'v1', true]);
    // another caller meanwhile: the stale value, no second refresh
    const other = open({ ttl: 30, stale: 60 });
    const r2 = await other.getOrComputeResult('analytics:a', async () => assert.fail('second refresh'));
    assert.deepEqual([r2.state, r2.value, r2.refreshing], ['STALE', 'v1', false]);
    await cache.drain();
    const r3 = await cache.getOrComputeResult('analytics:a', compute);
    assert.deepEqual([r3.state, r3.value], ['HIT', 'v2']);
  });

  test.it('early refresh: a HIT with a token is served and refreshed in the background', async () => {
    const cache = open({ ttl: 30, stale: 10 });
    let r;
    for (let i = 0; i < 5; i++) { // XFetch is random, but near-certain with these numbers
      await cache.set('report:early', 'v1', { ttl: 2, cost: 600000 });
      r = await cache.getOrComputeResult('report:early', async () => 'v2');
      if (r.refreshing) break;
    }
    assert.deepEqual([r.state, r.value, r.refreshing], ['HIT', 'v1', true]);
    await cache.drain();
    assert.equal(await cache.get('report:early'), 'v2');
    assert.ok((await cache.stats()).early_refreshes >= 1);
  });
});

test.describe('fail-safe', () => {
  test.it('inline refresh (staleWhileRevalidate: false) that throws: the stale value is served and reported', async () => {
    const cache = open({ ttl: 30, stale: 60, tags: ['t'], staleWhileRevalidate: false });
    const events = [];
    cache.on('failsafe', (e) => events.push(e));
    await cache.getOrCompute('fs:1', async () => 'good');
    await cache.softInvalidateTags('t');
    const r = await cache.getOrComputeResult('fs:1', async () => { throw new Error('db down'); });
    assert.deepEqual([r.state, r.value, r.error.message], ['FAILSAFE', 'good', 'db down']);
    assert.equal(events.length, 1);
    assert.deepEqual([events[0].key, events[0].value, events[0].background, events[0].error.message], ['fs:1', 'good', false, 'db down']);
  });

  test.it('background refresh that throws: the stale value keeps being served and the failure is reported', async () => {
    const seen = [];
    const cache = open({ ttl: 30, stale: 60, tags: ['t'], onFailSafe: (e) => seen.push(e) });
    await cache.getOrCompute('fs:2', async () => 'good');
    await cache.invalidate('fs:*', { soft: true });
    const r = await cache.getOrComputeResult('fs:2', async () => { throw new Error('db down'); });
    assert.deepEqual([r.state, r.value], ['STALE', 'good']);
    await cache.drain();
    assert.equal(seen.length, 1);
    assert.equal(seen[0].background, true);
    const r2 = await cache.getOrComputeResult('fs:2', async () => 'unused');
    assert.deepEqual([r2.state, r2.value], ['STALE', 'good'], 'still served while the failed lease lasts');
  });

  test.it('Redis unreachable: computed without caching, fast', async () => {
    const { startServer: start } = require('./server');
    const gone = await start();
    const cache = new Cache(gone.url, { ttl: 30, connectTimeoutMs: 500 });
    cache.on('error', () => {});
    assert.equal(await cache.getOrCompute('k', async () => 'a'), 'a');
    assert.equal((await cache.getOrComputeResult('k', async () => 'b')).state, 'HIT');
    await gone.stop();
    await sleep(100);
    const t0 = Date.now();
    const r = await cache.getOrComputeResult('k', async () => 'computed');
    assert.deepEqual([r.state, r.value, r.reason], ['UNCACHED', 'computed', 'unreachable']);
    assert.ok(Date.now() - t0 < 2000);
    await cache.close();
    // a client of your own (offline queue on, node-redis's default)
    const again = await start();
    const mine = createClient({ url: again.url });
    mine.on('error', () => {});
    await mine.connect();
    const withMine = new Cache(mine, { ttl: 30, commandTimeoutMs: 500 });
    assert.equal((await withMine.getOrComputeResult('k', async () => 'a')).state, 'MISS');
    await again.stop();
    await sleep(100);
    const t1 = Date.now();
    const r1 = await withMine.getOrComputeResult('k', async () => 'computed');
    assert.deepEqual([r1.state, r1.value], ['UNCACHED', 'computed']);
    assert.ok(Date.now() - t1 < 1500);
    await withMine.close();
    mine.destroy();
    const never = new Cache('redis://127.0.0.1:1', { ttl: 30, connectTimeoutMs: 300 });
    const r2 = await never.getOrComputeResult('k', async () => 'x');
    assert.deepEqual([r2.state, r2.value], ['UNCACHED', 'x']);
    await never.close();
  });
});

test.describe('tags, patterns, stats', () => {
  test.it('invalidateTags drops exactly the tagged entries', async () => {
    const cache = open({ ttl: 30 });
    await cache.getOrCompute('product:1', async () => 'lamp', { tags: ['product:1', 'products'] });
    await cache.getOrCompute('product:2', async () => 'desk', { tags: ['product:2', 'products'] });
    await cache.getOrCompute('products:page:1', async () => 'lamp,desk', { tags: ['products'] });
    assert.deepEqual((await cache.tags('product:1')).sort(), ['product:1', 'products']);
    assert.equal(await cache.invalidateTags(['product:1']), 1);
    assert.equal(await cache.get('product:1'), undefined);
    assert.equal(await cache.get('product:2'), 'desk');
    assert.equal(await cache.invalidateTags(['products', 'nothing']), 2);
    assert.equal(await cache.get('products:page:1'), undefined);
  });

  test.it('invalidate(pattern) and invalidateKey', async () => {
    const cache = open({ ttl: 30 });
    for (const k of ['a:1', 'a:2', 'b:1', 'a*']) await cache.set(k, k);
    assert.equal(await cache.invalidateKey('a*'), 1); // the literal key only
    assert.equal(await cache.get('a:1'), 'a:1');
    assert.equal(await cache.invalidate('a:*'), 2);
    assert.equal(await cache.get('b:1'), 'b:1');
  });

  test.it('stats: the server\'s counters, as numbers, per namespace too', async () => {
    const cache = open({ ttl: 60, stale: 30, tags: ['stats', 'demo'] });
    for (let i = 0; i < 3; i++) await cache.getOrCompute('stats:demo', async () => 'x'); // MISS HIT HIT
    assert.equal(await cache.get('stats:none'), undefined); // a miss
    assert.equal(await cache.softInvalidateTags('demo'), 1);
    await cache.getOrCompute('stats:demo', async () => 'y'); // STALE + refresh
    await cache.drain();
    const s = await cache.stats();
    const want = { hits: 2, stale_hits: 1, misses: 2, pending: 0, sets: 2, sets_refused: 0,
      leases_granted: 2, invalidations: 1, invalidated: 1, entries: 1, tags: 2 };
    assert.deepEqual(Object.fromEntries(Object.keys(want).map((f) => [f, s[f]])), want);
    assert.equal(s.hit_ratio, 0.6);
    assert.equal((await cache.stats({ namespace: 'stats' })).hits, 2);
    assert.equal((await cache.stats({ namespaces: true })).stats.hits, 2);
    await cache.resetStats();
    assert.equal((await cache.stats()).hits, 0);
  });

  test.it('values are JSON by default; a serializer of your own is used both ways', async () => {
    const cache = open({ ttl: 30 });
    assert.deepEqual(await cache.getOrCompute('obj', async () => ({ a: [1, 2], b: null })), { a: [1, 2], b: null });
    assert.deepEqual(await cache.getOrCompute('obj', async () => assert.fail('cached')), { a: [1, 2], b: null });
    const plain = open({ ttl: 30, serialize: String, deserialize: (s) => s });
    assert.equal(await plain.getOrCompute('s', async () => 'raw text'), 'raw text');
    assert.equal(await raw.sendCommand(['CACHE.GET', 's']), 'raw text');
  });
});
