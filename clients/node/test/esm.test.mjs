// The package loads both ways through its exports map (self-reference by name), and both
// ways give the same classes.
import test from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { Cache, KeyvRedisCache, escapePattern } from 'rediscache';
import def from 'rediscache';
import server from './server.js';

const require = createRequire(import.meta.url);

test('ESM import and CommonJS require give the same classes', () => {
  const cjs = require('rediscache');
  assert.equal(typeof Cache, 'function');
  assert.equal(Cache, cjs.Cache);
  assert.equal(KeyvRedisCache, cjs.KeyvRedisCache);
  assert.equal(def.Cache, Cache);
  assert.equal(escapePattern('a*b?[c]\\'), 'a\\*b\\?\\[c\\]\\\\');
});

test('ESM: a round trip through the module', async () => {
  const srv = await server.startServer();
  try {
    const cache = new Cache(`${srv.url}/5`, { ttl: 10 });
    let calls = 0;
    const f = async () => { calls++; return { ok: true }; };
    assert.deepEqual(await cache.getOrCompute('esm:1', f, { tags: ['esm'] }), { ok: true });
    assert.deepEqual(await cache.getOrCompute('esm:1', f), { ok: true });
    assert.equal(calls, 1);
    assert.equal(await cache.invalidateTags(['esm']), 1);
    await cache.close();
  } finally {
    await srv.stop();
  }
});
