'use strict';
// Shared helpers: connections, reply shapes, patterns, timeouts.

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class TimeoutError extends Error {
  constructor(what, ms) {
    super(`rediscache: ${what} did not answer within ${ms} ms`);
    this.name = 'TimeoutError';
  }
}

// Resolve `promise`, or reject with a TimeoutError after `ms` (the command itself is not
// cancelled: node-redis has no way to cancel one; its late reply is ignored).
function withTimeout(promise, ms, what) {
  if (!ms || ms <= 0 || !Number.isFinite(ms)) return promise;
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what, ms)), ms);
    if (timer.unref) timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// Escape the KEYS/SCAN MATCH special characters so that `s` matches only itself.
function escapePattern(s) {
  return String(s).replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

// A CACHE.STATS reply as a plain object with numbers: RESP3 gives a map (a Map or an object,
// depending on the client's type mapping), RESP2 a flat field/value array.
function statsObject(reply) {
  let entries;
  if (reply instanceof Map) entries = [...reply.entries()];
  else if (Array.isArray(reply)) {
    entries = [];
    for (let i = 0; i + 1 < reply.length; i += 2) entries.push([reply[i], reply[i + 1]]);
  } else if (reply && typeof reply === 'object') entries = Object.entries(reply);
  else return reply;
  const out = {};
  for (const [k, v] of entries) {
    const name = Buffer.isBuffer(k) ? k.toString() : String(k);
    out[name] = toNumberish(v);
  }
  return out;
}

function toNumberish(v) {
  if (Buffer.isBuffer(v)) v = v.toString();
  if (typeof v === 'string' && v !== '' && !Number.isNaN(Number(v))) return Number(v);
  if (v instanceof Map || Array.isArray(v) || (v && typeof v === 'object')) return statsObject(v);
  return v;
}

const str = (v) => (v === null || v === undefined ? v : Buffer.isBuffer(v) ? v.toString() : v);

// node-redis, a peer dependency: from this package's place, or (when the package is a
// symlink, as `npm install ./path` makes by default) from the application's directory.
function loadRedis() {
  try {
    return require('redis');
  } catch (e) {
    try {
      return require(require.resolve('redis', { paths: [process.cwd()] }));
    } catch {
      throw new Error('rediscache: the `redis` package (node-redis >= 5) is a peer dependency: npm install redis', { cause: e });
    }
  }
}

// Open a node-redis client for a URL (lazy require: `redis` is a peer dependency). The
// offline queue is off, so that a command sent while Redis is unreachable fails at once
// (and the caller computes without the cache) instead of waiting for a reconnection.
function createOwnClient(url, clientOptions = {}) {
  const redis = clientOptions.redis || loadRedis();
  clientOptions = { ...clientOptions };
  delete clientOptions.redis;
  const socket = {
    connectTimeout: 2000,
    reconnectStrategy: (retries) => Math.min(50 * 2 ** Math.min(retries, 6), 2000),
    ...(clientOptions.socket || {}),
  };
  return redis.createClient({ url, disableOfflineQueue: true, ...clientOptions, socket });
}

// Start connecting `client` if it is not open; resolve once it is ready or after `ms`,
// whichever is first (never rejects: an unreachable server is a state, not an error here).
function connectBounded(client, ms) {
  if (client.isReady) return Promise.resolve();
  const ready = new Promise((resolve) => {
    client.once('ready', resolve);
    if (!client.isOpen) client.connect().then(resolve, resolve);
  });
  let timer;
  const timeout = new Promise((resolve) => { timer = setTimeout(resolve, ms); });
  return Promise.race([ready, timeout]).finally(() => clearTimeout(timer));
}

// Close a client at once, whatever its version (v5+: destroy, v4: disconnect), ignoring errors.
function destroyClient(c) {
  try {
    const r = (c.destroy || c.disconnect).call(c);
    if (r && typeof r.catch === 'function') r.catch(() => {});
  } catch { /* already closed */ }
}

module.exports = { destroyClient, sleep, withTimeout, TimeoutError, escapePattern, statsObject, str, createOwnClient, connectBounded };
