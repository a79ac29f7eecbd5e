'use strict';
// NearCache against a real server: local copies kept by CACHE.GET WITHMETA, dropped by the
// module's invalidation messages and CLIENT TRACKING pushes (RESP2 REDIRECT), everything
// dropped when a connection drops; and the figure of issue 11: 100,000 local copies under one
// tag, INVALIDATETAG from another connection, time from its reply until no copy is servable.
const test = require('node:test');
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const { NearCache } = require('..');
const { startServer } = require('./server');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const ENTRIES = Number(process.env.NEAR_ENTRIES || 100000);
const ROUNDS = Number(process.env.NEAR_ROUNDS || 2); // the README's figures: NEAR_ROUNDS=5

let srv;
let raw; // another application server
const nears = [];
async function openNear(opts = {}) {
  const n = new NearCache(`${srv.url}/0`, { ttl: 60, ...opts });
  n.on('error', () => {});
  nears.push(n);
  await n.ready();
  return n;
}
async function until(what, fn, ms = 5000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}
const set = (key, value, ...rest) => raw.sendCommand(['CACHE.SETTAGGED', key, JSON.stringify(value), ...rest]);

test.before(async () => {
  srv = await startServer();
  raw = createClient({ url: srv.url, commandOptions: { timeout: 60000 } }); // a busy machine
  raw.on('error', () => {});
  await raw.connect();
});
test.after(async () => {
  for (const n of nears) await n.close();
  await raw.close();
  await srv.stop();
});
test.beforeEach(() => raw.sendCommand(['FLUSHDB']));

test.describe('NearCache', () => {
  test.it('reads L1 -> CACHE.GET WITHMETA -> GETORMARK; a local hit asks the server nothing', async () => {
    const near = await openNear();
    const r1 = await near.getOrComputeResult('p:1', async () => 'computed', { tags: ['p'] });
    assert.deepEqual([r1.state, r1.value, r1.local], ['MISS', 'computed', false]);
    assert.equal(near.peek('p:1'), undefined, 'GETORMARK replies are not kept (not tracked)');
    await sleep(50); // the push for our own set (the key was tracked by the first CACHE.GET)
    const r2 = await near.getOrComputeResult('p:1', async () => assert.fail());
    assert.deepEqual([r2.state, r2.value, r2.local], ['HIT', 'computed', false]);
    assert.deepEqual(near.peek('p:1'), { value: 'computed', fresh: true });
    await raw.sendCommand(['CACHE.STATS', 'RESET']);
    for (let i = 0; i < 10; i++) assert.equal((await near.getOrComputeResult('p:1', async () => assert.fail())).local, true);
    const s = await near.stats();
    assert.equal(s.hits + s.misses + s.stale_hits, 0, 'no lookup reached the server');
  });

  test.it('overwrite, DEL and expiry from another connection drop the copy (tracking pushes)', async () => {
    const near = await openNear();
    await set('k:1', 'v1', 'EX', '60');
    await set('k:2', 'v1', 'EX', '60');
    await set('k:3', 'v1', 'PX', '300');
    for (const k of ['k:1', 'k:2', 'k:3']) assert.equal(await near.get(k), 'v1');
    assert.equal(near.size, 3);
    await set('k:1', 'v2', 'EX', '60');
    await raw.sendCommand(['DEL', 'k:2']);
    await until('pushes', () => near.peek('k:1') === undefined && near.peek('k:2') === undefined);
    assert.equal(await near.get('k:1'), 'v2');
    assert.equal(await near.get('k:2'), undefined);
    await sleep(350); // k:3 has expired: aged out locally from expire_at_ms, whatever the push does
    assert.equal(near.peek('k:3'), undefined);
    assert.equal(await near.get('k:3'), undefined);
  });

  test.it('tag, soft tag, tag pattern, key pattern (in a namespace and not), soft pattern', async () => {
    const near = await openNear();
    const keys = { 'a:1': ['t1', 'x'], 'a:2': ['t1'], 'a:3': ['t2'], 'b:1': ['t3'], 'b:2': ['t3'], 'c:1': ['tx:9'] };
    const loadAll = async () => {
      for (const [k, tags] of Object.entries(keys)) await set(k, k, 'EX', '60', 'STALE', '60', 'TAGS', ...tags);
      await sleep(30); // the pushes for those writes
      for (const k of Object.keys(keys)) await near.get(k);
    };
    await loadAll();
    assert.equal(near.size, 6);
    // another connection; the message (and any pushes) reach the near cache
    assert.equal(await raw.sendCommand(['CACHE.INVALIDATETAG', 't1']), 2);
    await until('tag t1', () => !near.peek('a:1') && !near.peek('a:2'));
    assert.ok(near.peek('a:3').fresh);
    assert.equal(await raw.sendCommand(['CACHE.INVALIDATETAG', 't3', 'SOFT']), 2);
    await until('softtag t3', () => !near.peek('b:1')?.fresh && !near.peek('b:2')?.fresh);
    assert.equal(await near.getOrCompute('b:1', async () => 'b:1 new', { tags: ['t3'] }), 'b:1', 'STALE served while refreshed');
    await near.cache.drain();
    assert.equal(await near.get('b:1'), 'b:1 new');
    assert.equal(await raw.sendCommand(['CACHE.INVALIDATETAG', 'tx:*']), 1);
    await until('tag pattern', () => !near.peek('c:1'));
    await loadAll();
    assert.equal(await raw.sendCommand(['CACHE.INVALIDATE', 'a:[12]']), 2);
    await until('pattern in a namespace', () => !near.peek('a:1') && !near.peek('a:2'));
    assert.ok(near.peek('a:3').fresh && near.peek('b:1').fresh);
    await loadAll();
    assert.equal(await raw.sendCommand(['CACHE.INVALIDATE', '*:1', 'SOFT']), 3);
    await until('softpattern', () => ['a:1', 'b:1', 'c:1'].every((k) => !near.peek(k)?.fresh));
    assert.ok(near.peek('a:2').fresh && near.peek('b:2').fresh && near.peek('a:3').fresh);
  });

  test.it('FLUSHDB drops everything; a refused set (void lease) drops nothing', async () => {
    const near = await openNear();
    await set('f:1', 1, 'EX', '60');
    await set('f:2', 2, 'EX', '60');
    assert.equal(await near.get('f:1'), 1);
    assert.equal(await near.get('f:2'), 2);
    const [, , token] = await raw.sendCommand(['CACHE.GETORMARK', 'f:3']);
    await set('f:3', 'x'); // voids the token
    assert.equal(await raw.sendCommand(['CACHE.SETTAGGED', 'f:1', '"late"', 'LEASE', token]), null);
    const pushes = near.local.pushes;
    assert.equal(await raw.sendCommand(['CACHE.SETTAGGED', 'f:1', '"late"', 'EX', '60', 'LEASE', 'bogus']), null);
    await sleep(100);
    assert.equal(near.local.pushes, pushes, 'no push for refused sets');
    assert.deepEqual(near.peek('f:1'), { value: 1, fresh: true });
    await raw.sendCommand(['FLUSHDB']);
    await until('flush', () => near.size === 0);
  });

  test.it('a dropped connection drops every copy; copies are kept again once it is back', async () => {
    const near = await openNear();
    await set('d:1', 1, 'EX', '60');
    assert.equal(await near.get('d:1'), 1);
    assert.equal(near.size, 1);
    const inactive = new Promise((r) => near.once('inactive', r));
    await raw.sendCommand(['CLIENT', 'KILL', 'TYPE', 'pubsub']); // the subscriber
    await inactive;
    assert.equal(near.size, 0);
    await near.ready();
    assert.equal(await near.get('d:1'), 1);
    assert.equal(near.size, 1);
    await set('d:1', 2, 'EX', '60'); // the new REDIRECT works
    await until('push after reconnect', () => near.peek('d:1') === undefined);
    assert.equal(await near.get('d:1'), 2);
    // the reading connection this time
    const id = await near.client.sendCommand(['CLIENT', 'ID']);
    const inactive2 = new Promise((r) => near.once('inactive', r));
    await raw.sendCommand(['CLIENT', 'KILL', 'ID', String(id)]);
    await inactive2;
    assert.equal(near.size, 0);
    await near.ready();
    assert.equal(await near.get('d:1'), 2);
    await set('d:1', 3, 'EX', '60');
    await until('push after the reading connection came back', () => near.peek('d:1') === undefined);
  });

  test.it('through a replica: the replica\'s messages and pushes reach a near cache reading from it', async () => {
    const replica = await startServer(['--replicaof', '127.0.0.1', String(srv.port)]);
    const rr = createClient({ url: replica.url, commandOptions: { timeout: 60000 } });
    rr.on('error', () => {});
    try {
      await rr.connect();
      await until('replication link up', async () => /master_link_status:up/.test(await rr.sendCommand(['INFO', 'replication'])), 20000);
      const near = new NearCache(`${replica.url}/0`, { ttl: 60 });
      near.on('error', () => {});
      nears.push(near);
      await near.ready();
      for (let i = 0; i < 5; i++) await set(`r:${i}`, i, 'EX', '60', 'STALE', '60', 'TAGS', i < 3 ? 'three' : 'two');
      await raw.sendCommand(['WAIT', '1', '5000']);
      for (let i = 0; i < 5; i++) assert.equal(await near.get(`r:${i}`), i);
      assert.equal(near.size, 5);
      assert.equal(await raw.sendCommand(['CACHE.INVALIDATETAG', 'three']), 3); // on the primary
      await until('tag message on the replica', () => [0, 1, 2].every((i) => !near.peek(`r:${i}`)));
      assert.ok(near.peek('r:3').fresh && near.peek('r:4').fresh);
      assert.equal(await raw.sendCommand(['CACHE.INVALIDATETAG', 'two', 'SOFT']), 2);
      await until('softtag on the replica', () => [3, 4].every((i) => !near.peek(`r:${i}`)?.fresh));
      await set('r:0', 'new', 'EX', '60');
      await raw.sendCommand(['WAIT', '1', '5000']);
      assert.equal(await near.get('r:0'), 'new');
      await set('r:0', 'newer', 'EX', '60'); // a replicated overwrite: the replica pushes
      await until('push on the replica', () => !near.peek('r:0'));
      await near.close();
    } finally {
      await rr.close();
      await replica.stop();
    }
  });

  test.it('a reply read before an invalidation that arrived while it was in flight is not kept as fresh', async () => {
    const near = await openNear();
    for (const k of ['i:1', 'i:2', 'i:3', 'i:4']) await set(k, k, 'EX', '60', 'TAGS', 't', `own:${k}`);
    // The message is handled before the reply (both are on their way when the read is sent).
    let p = near.get('i:1');
    near._onMessage(near.channel, 'tag t');
    assert.equal(await p, 'i:1', 'this caller still gets what it read');
    assert.equal(near.peek('i:1'), undefined, 'not kept');
    p = near.get('i:2');
    near._onMessage(near.channel, 'softtag own:i:2');
    assert.equal(await p, 'i:2');
    assert.equal(near.peek('i:2').fresh, false, 'kept as stale');
    p = near.get('i:3');
    near._onMessage('__redis__:invalidate', ['i:3']);
    await p;
    assert.equal(near.peek('i:3'), undefined, 'a push for the key during the read');
    p = near.get('i:4');
    near._onMessage(near.channel, 'tag unrelated');
    near._onMessage(near.channel, 'pattern other:*');
    await p;
    assert.equal(near.peek('i:4').fresh, true, 'unrelated rules do not stop it');
  });

  test.it('bounded: the least recently used copy goes first', async () => {
    const near = await openNear({ maxEntries: 3 });
    for (let i = 1; i <= 4; i++) await set(`l:${i}`, i, 'EX', '60');
    for (const k of ['l:1', 'l:2', 'l:3']) await near.get(k);
    await near.get('l:1'); // touch
    await near.get('l:4');
    assert.equal(near.size, 3);
    assert.equal(near.peek('l:2'), undefined);
    assert.ok(near.peek('l:1') && near.peek('l:3') && near.peek('l:4'));
    assert.equal(near.local.evictions, 1);
  });
});

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]; };

async function populate(near, n, tag) {
  const B = 2000;
  for (let i = 0; i < n; i += B) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + B); j++) batch.push(raw.sendCommand(['CACHE.SETTAGGED', `big:${j}`, String(j), 'EX', '600', 'STALE', '600', 'TAGS', tag]));
    await Promise.all(batch);
  }
  for (let i = 0; i < n; i += B) {
    const batch = [];
    for (let j = i; j < Math.min(n, i + B); j++) batch.push(near.get(`big:${j}`));
    await Promise.all(batch);
  }
}

test.describe(`NearCache: ${ENTRIES} local copies under one tag, INVALIDATETAG from another connection`, () => {
  for (const soft of [false, true]) {
    test.it(`${soft ? 'SOFT: no copy served as fresh' : 'hard: no copy served'} after the message; figures`, async (t) => {
      const near = await openNear({ maxEntries: ENTRIES + 10, commandTimeoutMs: 30000 });
      const servable = [];
      const swept = [];
      for (let round = 0; round < ROUNDS; round++) {
        await raw.sendCommand(['FLUSHDB']);
        await until('flush reached the near cache', () => near.size === 0);
        await populate(near, ENTRIES, 'big');
        assert.equal(near.size, ENTRIES);
        let ruleAt;
        const got = new Promise((resolve) => {
          const on = (e) => { if (e.kind === (soft ? 'softtag' : 'tag')) { near.off('invalidate', on); ruleAt = e.rulesAt; resolve(); } };
          near.on('invalidate', on);
        });
        const doneSweeping = new Promise((resolve) => {
          const on = () => { if (near.localStats().sweeping === 0) { near.off('swept', on); resolve(performance.now()); } };
          near.on('swept', on);
        });
        const reply = await raw.sendCommand(['CACHE.INVALIDATETAG', 'big', ...(soft ? ['SOFT'] : [])]);
        const replyAt = performance.now();
        assert.equal(reply, ENTRIES);
        await got;
        servable.push(Math.max(0, ruleAt - replyAt));
        // Every copy is now refused (hard) or not fresh (soft), before any sweep has run.
        for (let j = 0; j < ENTRIES; j += 997) {
          const p = near.peek(`big:${j}`);
          // soft: stale here, or already dropped by the key's tracking push (the module signals
          // a soft-invalidated key, at command time or as its sweeper marks it)
          assert.ok(soft ? p === undefined || !p.fresh : p === undefined, `big:${j}`);
        }
        const sweptAt = await doneSweeping;
        swept.push(Math.max(0, sweptAt - replyAt));
        if (!soft) assert.equal(near.size, 0, 'every copy freed');
        else for (let j = 0; j < ENTRIES; j += 991) assert.notEqual(near.peek(`big:${j}`)?.fresh, true);
      }
      const fmt = (xs) => `p50 ${pct(xs, 50).toFixed(2)} ms, p99 ${pct(xs, 99).toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)} ms`;
      const line = `near cache, ${ENTRIES} copies under one tag, INVALIDATETAG${soft ? ' SOFT' : ''}, ${ROUNDS} rounds: ` +
        `reply -> no copy servable${soft ? ' as fresh' : ''}: ${fmt(servable)}; reply -> every copy ${soft ? 'marked stale' : 'freed'} (sweep): ${fmt(swept)}`;
      t.diagnostic(line);
      console.log(line);
    });
  }

  test.it(`a storm of ${ENTRIES} tracking pushes costs O(keys), not O(keys x local size)`, async (t) => {
    const near = await openNear({ maxEntries: ENTRIES + 10, commandTimeoutMs: 30000 });
    await raw.sendCommand(['FLUSHDB']);
    await populate(near, ENTRIES, 'storm');
    assert.equal(near.size, ENTRIES);
    const t0 = performance.now();
    const B = 5000;
    for (let i = 0; i < ENTRIES; i += B) { // overwrite every key: one push per key
      const batch = [];
      for (let j = i; j < Math.min(ENTRIES, i + B); j++) batch.push(raw.sendCommand(['CACHE.SETTAGGED', `big:${j}`, 'x', 'EX', '600']));
      await Promise.all(batch);
    }
    await until('every push', () => near.size === 0, 60000);
    const ms = performance.now() - t0;
    const { pushes, pushedKeys, handlerMs } = near.local;
    const line = `near cache: ${ENTRIES} overwrites from another connection -> ${pushes} pushes (${pushedKeys} keys) handled in ${handlerMs.toFixed(1)} ms of handler time ` +
      `(${((handlerMs * 1000) / pushedKeys).toFixed(2)} us per key, with ${ENTRIES} local copies); every copy dropped ${ms.toFixed(0)} ms after the first write (writes included)`;
    t.diagnostic(line);
    console.log(line);
    assert.ok(near.local.pushes > 0);
  });
});
