'use strict';
// CommonJS through the exports map (self-reference by name).
const test = require('node:test');
const assert = require('node:assert/strict');

test('CommonJS require by package name', () => {
  const m = require('rediscache');
  assert.deepEqual(Object.keys(m).sort(), ['Cache', 'KeyvRedisCache', 'NearCache', 'TimeoutError', 'escapePattern']);
  assert.equal(m.Cache, require('../lib/cache').Cache);
  assert.throws(() => new m.Cache(42), /node-redis client or a redis:\/\/ URL/);
});
