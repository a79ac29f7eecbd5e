// @keyv/test-suite (Keyv's own compliance suite) against KeyvRedisCache on a real
// redis-server with the module, in the form the README shows:
//   new Keyv({ store: new KeyvRedisCache('redis://host:port/db') })
// and again over one shared node-redis client.
import * as test from 'vitest';
import Keyv from 'keyv';
import keyvTestSuite, { keyvIteratorTests } from '@keyv/test-suite';
import { createClient } from 'redis';
import { KeyvRedisCache } from '../../lib/index.mjs';
import server from '../server.js';

const srv = await server.startServer();
const stores = [];
const urlStore = () => {
  const s = new KeyvRedisCache(`${srv.url}/1`);
  stores.push(s);
  return s;
};
const shared = createClient({ url: `${srv.url}/2` });
shared.on('error', () => {});
await shared.connect();
const clientStore = () => new KeyvRedisCache(shared);

test.afterAll(async () => {
  await Promise.all(stores.map((s) => s.disconnect()));
  await shared.close();
  await srv.stop();
});

test.describe('KeyvRedisCache(url)', () => {
  keyvTestSuite(test, Keyv, urlStore);
  keyvIteratorTests(test, Keyv, urlStore);
});

test.describe('KeyvRedisCache(node-redis client)', () => {
  keyvTestSuite(test, Keyv, clientStore);
  keyvIteratorTests(test, Keyv, clientStore);
});
