'use strict';
// KeyvRedisCache beyond @keyv/test-suite: values are module entries (tags work), clear() is
// scoped to the namespace, and the store works under cache-manager v7.
const test = require('node:test');
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const { Keyv } = require('keyv');
const { createCache } = require('cache-manager');
const { KeyvRedisCache } = require('..');
const { startServer } = require('./server');
const { statsObject } = require('../lib/util');

let srv;
let raw;
const stores = [];
const store = (opts) => {
  const s = new KeyvRedisCache(`${srv.url}/4`, opts);
  stores.push(s);
  return s;
};

test.before(async () => {
  srv = await startServer();
  raw = createClient({ url: `${srv.url}/4` });
  raw.on('error', () => {});
  await raw.connect();
});
test.after(async () => {
  for (const s of stores) await s.disconnect();
  await raw.close();
  await srv.stop();
});
test.beforeEach(async () => {
  await raw.sendCommand(['FLUSHDB']);
  await raw.sendCommand(['CACHE.STATS', 'RESET']);
});

test.describe('Keyv', () => {
  test.it('values are module entries: CACHE.GET reads them, the server counts the lookups', async () => {
    const keyv = new Keyv({ store: store() });
    await keyv.set('user:1', { name: 'Ada' }, 60000);
    assert.deepEqual(await keyv.get('user:1'), { name: 'Ada' });
    assert.equal(JSON.parse(await raw.sendCommand(['CACHE.GET', 'keyv:user:1'])).value.name, 'Ada');
    const pttl = await raw.sendCommand(['PTTL', 'keyv:user:1']);
    assert.ok(pttl > 50000 && pttl <= 60000, `PTTL ${pttl}`);
    assert.equal(await keyv.get('user:2'), undefined);
    const s = statsObject(await raw.sendCommand(['CACHE.STATS', 'NAMESPACE', 'keyv']));
    // keyv.get of user:1 twice (ours + the one above through CACHE.GET) and one miss
    assert.deepEqual([s.hits, s.misses, s.sets, s.entries], [2, 1, 1, 1]);
  });

  test.it('tags: withTags() around any write, tagsFor(key), fixed tags; invalidateTags drops them', async () => {
    const s = store({ tags: ['app'], tagsFor: (key) => [key.split(':')[1]] });
    const keyv = new Keyv({ store: s });
    await s.withTags(['sales', 'region:north'], async () => {
      await keyv.set('report:north', 'n');
      await s.withTags(['extra'], () => keyv.set('report:north:detail', 'd'));
    });
    await keyv.set('report:south', 's');
    assert.deepEqual((await s.tagsOf('keyv:report:north')).sort(), ['app', 'region:north', 'report', 'sales']);
    assert.deepEqual((await s.tagsOf('keyv:report:north:detail')).sort(), ['app', 'extra', 'region:north', 'report', 'sales']);
    assert.deepEqual((await s.tagsOf('keyv:report:south')).sort(), ['app', 'report']);
    assert.equal(await s.invalidateTags(['region:north']), 2);
    assert.equal(await keyv.get('report:north'), undefined);
    assert.equal(await keyv.get('report:south'), 's');
    assert.equal(await s.invalidate('keyv:report:*'), 1);
    assert.equal(await keyv.get('report:south'), undefined);
  });

  test.it('clear() removes only its namespace\'s entries, never other keys (no FLUSHDB)', async () => {
    const a = new Keyv({ store: store(), namespace: 'a' });
    const b = new Keyv({ store: store(), namespace: 'b' });
    await a.set('x', 1);
    await a.set('y', 2);
    await b.set('x', 3);
    await raw.sendCommand(['SET', 'a:native', 'plain string']); // not an entry
    await raw.sendCommand(['CACHE.SETTAGGED', 'other', 'v']);
    await a.clear();
    assert.equal(await a.get('x'), undefined);
    assert.equal(await a.get('y'), undefined);
    assert.equal(await b.get('x'), 3);
    assert.equal(await raw.sendCommand(['GET', 'a:native']), 'plain string');
    assert.equal(await raw.sendCommand(['CACHE.GET', 'other']), 'v');
  });

  test.it('namespace characters that are pattern syntax are escaped in clear()', async () => {
    const star = new Keyv({ store: store(), namespace: 'n*' });
    const other = new Keyv({ store: store(), namespace: 'nx' });
    await star.set('k', 1);
    await other.set('k', 2);
    await star.clear();
    assert.equal(await star.get('k'), undefined);
    assert.equal(await other.get('k'), 2);
  });

  test.it('soft invalidation keeps serving the old value through CACHE.GET (stale), hard drops it', async () => {
    const s = store();
    const keyv = new Keyv({ store: s, namespace: 'soft' });
    await raw.sendCommand(['CONFIG', 'SET', 'cache.default-stale', '60']);
    try {
      await s.withTags(['t'], () => keyv.set('k', 'old', 30000));
      assert.equal(await s.invalidateTags('t', { soft: true }), 1);
      assert.equal(await keyv.get('k'), 'old');
      assert.equal(await s.invalidateTags('t'), 1);
      assert.equal(await keyv.get('k'), undefined);
    } finally {
      await raw.sendCommand(['CONFIG', 'SET', 'cache.default-stale', '0']);
    }
  });
});

test.describe('cache-manager v7 over Keyv({ store: KeyvRedisCache })', () => {
  test.it('get/set/mget/mset/del/mdel/ttl/clear', async () => {
    const cache = createCache({ stores: [new Keyv({ store: store() })] });
    assert.deepEqual(await cache.set('a', { n: 1 }, 10000), { n: 1 });
    assert.deepEqual(await cache.get('a'), { n: 1 });
    const ttl = await cache.ttl('a');
    assert.ok(ttl > Date.now() + 9000 && ttl <= Date.now() + 10000, `ttl ${ttl}`);
    await cache.mset([{ key: 'b', value: 2 }, { key: 'c', value: 3, ttl: 5000 }]);
    assert.deepEqual(await cache.mget(['a', 'b', 'c', 'nope']), [{ n: 1 }, 2, 3, undefined]);
    assert.equal(await cache.del('a'), true);
    assert.equal(await cache.get('a'), undefined);
    assert.equal(await cache.mdel(['b', 'c']), true);
    assert.deepEqual(await cache.mget(['b', 'c']), [undefined, undefined]);
    await cache.set('d', 4);
    await raw.sendCommand(['SET', 'keyv:native', 'x']);
    assert.equal(await cache.clear(), true);
    assert.equal(await cache.get('d'), undefined);
    assert.equal(await raw.sendCommand(['GET', 'keyv:native']), 'x');
  });

  test.it('wrap() computes once for 50 concurrent callers; tags through the store\'s withTags()', async () => {
    const s = store();
    const cache = createCache({ stores: [new Keyv({ store: s })] });
    let calls = 0;
    const build = async () => { calls++; await new Promise((r) => setTimeout(r, 100)); return { total: 42 }; };
    const results = await s.withTags(['sales'], () => Promise.all(Array.from({ length: 50 }, () => cache.wrap('report:sales', build, 60000))));
    assert.equal(calls, 1);
    assert.ok(results.every((r) => r.total === 42));
    assert.deepEqual(await s.tagsOf('keyv:report:sales'), ['sales']);
    assert.equal(await s.invalidateTags(['sales']), 1);
    assert.equal(await cache.get('report:sales'), undefined);
    await cache.wrap('report:sales', build, 60000);
    assert.equal(calls, 2);
  });
});
