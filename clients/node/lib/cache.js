'use strict';
// Cache: get-or-compute on CACHE.GETORMARK / CACHE.SETTAGGED with leases, WAIT,
// stale-while-revalidate, early refresh, tags, soft invalidation, stats and a fail-safe.

const { EventEmitter } = require('node:events');
const {
  sleep, withTimeout, escapePattern, statsObject, str, createOwnClient, connectBounded, destroyClient,
} = require('./util');

const DEFAULTS = {
  ttl: 60, // fresh lifetime, seconds (fractions allowed: sent as PX)
  stale: 0, // seconds after that during which the value may still be served as STALE
  tags: [],
  waitMs: 5000, // how long a caller waits for another client's computation, in total
  leaseMs: undefined, // lease protecting a computation (server default cache.lease-ms, 10 s)
  retries: 10, // at most this many further lookups after PENDING
  staleWhileRevalidate: true, // STALE + lease: serve the stale value, refresh off the caller's path
  coalesce: true, // one lookup per key at a time in this process; concurrent callers share it
  maxBlockingClients: 8, // extra connections for GETORMARK ... WAIT (a blocked connection serves nobody else)
  commandTimeoutMs: 2000, // a non-blocking command slower than this counts as Redis unreachable
  connectTimeoutMs: 2000, // how long the first lookup waits for the initial connection
  serialize: JSON.stringify,
  deserialize: JSON.parse,
  // How to run a refresh that must not delay the caller: a function taking a function.
  scheduleRefresh: (fn) => { setImmediate(fn); },
};

class Cache extends EventEmitter {
  /**
   * @param {string|object} clientOrUrl a node-redis client (yours: you connect and close it),
   *   or a redis:// URL (the cache opens and closes its own client)
   * @param {object} [options] defaults for every call, see DEFAULTS
   */
  constructor(clientOrUrl, options = {}) {
    super();
    this.options = { ...DEFAULTS, ...options };
    if (typeof clientOrUrl === 'string') {
      this.client = createOwnClient(clientOrUrl, options.clientOptions);
      this._ownsClient = true;
    } else if (clientOrUrl && typeof clientOrUrl.sendCommand === 'function') {
      this.client = clientOrUrl;
      this._ownsClient = false;
    } else {
      throw new TypeError('rediscache: Cache needs a node-redis client or a redis:// URL');
    }
    this._onClientError = (e) => this._error(e);
    this.client.on('error', this._onClientError);
    this._ready = connectBounded(this.client, this.options.connectTimeoutMs);
    this._flights = new Map();
    this._blockingFree = [];
    this._blockingAll = new Set();
    this._refreshing = new Set();
    this._closed = false;
  }

  // 'error' is emitted only when someone listens (an unheard 'error' would crash the process).
  _error(e) {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  async _available() {
    if (this.client.isReady === undefined || this.client.isReady) return true;
    await this._ready;
    return Boolean(this.client.isReady);
  }

  async _cmd(args, client = this.client, ms = this.options.commandTimeoutMs) {
    if (client === this.client && this.client.isReady === false) await this._ready;
    // node-redis >= 6 has a command timeout of its own (5 s by default): ours replaces it, so
    // that a GETORMARK ... WAIT may block for as long as it asked.
    return withTimeout(client.sendCommand(args, ms > 0 ? { timeout: ms + 1000 } : undefined), ms, args[0]);
  }

  // --- get-or-compute ---------------------------------------------------------------

  /** The cached value of `key`, computed with `await compute()` when needed. */
  async getOrCompute(key, compute, options) {
    return (await this.getOrComputeResult(key, compute, options)).value;
  }

  /**
   * Like getOrCompute, but resolves to `{ value, state, stored, refreshing }`: `state` is
   * HIT, STALE, MISS (computed here), FAILSAFE (computation threw, stale value served) or
   * UNCACHED (computed without the cache: Redis unreachable, or another client's
   * computation did not finish within waitMs). `coalesced: true` when this call shared the
   * lookup of a concurrent call for the same key in this process.
   */
  getOrComputeResult(key, compute, options = {}) {
    if (typeof compute !== 'function') throw new TypeError('rediscache: compute must be a function');
    const o = { ...this.options, ...options };
    key = String(key);
    if (!o.coalesce) return this._lookup(key, compute, o);
    const inFlight = this._flights.get(key);
    // Joiners share the first caller's lookup (and computation); `coalesced` marks them.
    if (inFlight) return inFlight.then((r) => ({ ...r, coalesced: true }));
    const p = this._lookup(key, compute, o).finally(() => this._flights.delete(key));
    this._flights.set(key, p);
    return p;
  }

  async _lookup(key, compute, o) {
    const deadline = Date.now() + o.waitMs;
    if (!(await this._available())) return this._uncached(key, compute, 'unreachable');
    const base = ['CACHE.GETORMARK', key];
    if (o.leaseMs) base.push('LEASE', String(Math.ceil(o.leaseMs)));
    let backoff = 25;
    for (let attempt = 0; ; attempt++) {
      let reply;
      try {
        const remaining = deadline - Date.now();
        if (attempt > 0 && remaining > 0) {
          // Block in WAIT on a connection of our own, so this one keeps serving others.
          reply = await this._blocking((c) => this._cmd([...base, 'WAIT', String(remaining)], c,
            remaining + o.commandTimeoutMs));
        }
        if (reply === undefined) reply = await this._cmd(base);
      } catch (e) {
        this._error(e);
        return this._uncached(key, compute, 'error');
      }
      const [state, raw, token] = [str(reply[0]), reply[1], reply[2]];
      if (state === 'HIT') {
        const value = o.deserialize(str(raw));
        if (token != null) this._background(key, compute, o, token, value); // early refresh
        return { value, state, stored: false, refreshing: token != null };
      }
      if (state === 'STALE') {
        const value = o.deserialize(str(raw));
        if (token == null) return { value, state, stored: false, refreshing: false };
        if (o.staleWhileRevalidate) {
          this._background(key, compute, o, token, value);
          return { value, state, stored: false, refreshing: true };
        }
        try {
          return await this._computeAndStore(key, compute, o, token);
        } catch (error) {
          this._failSafe(key, error, value, false);
          return { value, state: 'FAILSAFE', stored: false, refreshing: false, error };
        }
      }
      if (state === 'MISS') return this._computeAndStore(key, compute, o, token);
      // PENDING: another client holds the lease and has not stored yet.
      if (attempt >= o.retries || Date.now() >= deadline) return this._uncached(key, compute, 'pending');
      if (this._blockingAll.size >= o.maxBlockingClients && this._blockingFree.length === 0) {
        await sleep(Math.min(backoff, Math.max(1, deadline - Date.now())));
        backoff = Math.min(backoff * 2, 500);
      }
    }
  }

  async _computeAndStore(key, compute, o, token) {
    const started = Date.now();
    const value = await compute();
    const cost = Math.max(1, Date.now() - started);
    let stored = false;
    const raw = value === undefined ? undefined : o.serialize(value);
    if (raw !== undefined) {
      const args = ['CACHE.SETTAGGED', key, raw, ...this._lifetimeArgs(o), 'COST', String(cost), 'LEASE', token];
      const tags = [].concat(o.tags ?? []);
      if (tags.length) args.push('TAGS', ...tags.map(String));
      try {
        // nil: the lease was voided (an invalidation, or a newer writer) while we computed,
        // so our value may predate the change: it is not cached, but this caller gets it.
        stored = (await this._cmd(args)) !== null;
      } catch (e) {
        this._error(e);
      }
    }
    return { value, state: 'MISS', stored, refreshing: false };
  }

  _lifetimeArgs(o) {
    const ttl = Number(o.ttl);
    if (!(ttl > 0)) throw new RangeError('rediscache: ttl must be a positive number of seconds');
    const args = ['PX', String(Math.max(1, Math.round(ttl * 1000)))];
    if (o.stale > 0) args.push('STALE', String(Math.ceil(o.stale)));
    return args;
  }

  // Refresh off the caller's path (STALE with a lease, or HIT with an early-refresh lease).
  _background(key, compute, o, token, currentValue) {
    let done;
    const p = new Promise((resolve) => { done = resolve; });
    this._refreshing.add(p);
    const run = () => Promise.resolve()
      .then(() => this._computeAndStore(key, compute, o, token))
      .then((r) => this.emit('refresh', { key, stored: r.stored }),
        (error) => this._failSafe(key, error, currentValue, true))
      .finally(() => { this._refreshing.delete(p); done(); });
    try {
      o.scheduleRefresh(run);
    } catch (e) {
      this._error(e);
      run();
    }
  }

  _failSafe(key, error, value, background) {
    // The computation threw and the stale value is (still) served: say so.
    this.emit('failsafe', { key, error, value, background });
    if (typeof this.options.onFailSafe === 'function') this.options.onFailSafe({ key, error, value, background });
  }

  async _uncached(key, compute, reason) {
    // Redis unreachable, or nobody stored the value in time: compute rather than fail.
    this.emit('uncached', { key, reason });
    const value = await compute();
    return { value, state: 'UNCACHED', stored: false, refreshing: false, reason };
  }

  // Run fn(client) on a connection of the blocking pool; undefined when none is free.
  async _blocking(fn) {
    let c = this._blockingFree.pop();
    if (!c) {
      if (this._blockingAll.size >= this.options.maxBlockingClients || this._closed) return undefined;
      c = this.client.duplicate();
      this._blockingAll.add(c);
      c.on('error', () => {}); // reported through the main client
      try {
        await withTimeout(c.connect(), this.options.connectTimeoutMs, 'connect');
      } catch (e) {
        this._drop(c);
        throw e;
      }
    }
    let healthy = false;
    try {
      const reply = await fn(c);
      healthy = true;
      return reply;
    } finally {
      if (healthy && c.isReady && !this._closed) this._blockingFree.push(c);
      else this._drop(c); // a timed-out WAIT may still be blocking it
    }
  }

  _drop(c) {
    this._blockingAll.delete(c);
    destroyClient(c);
  }

  /** Resolves when every background refresh started so far has finished. */
  async drain() {
    while (this._refreshing.size) await Promise.all([...this._refreshing]);
  }

  // --- plain operations -------------------------------------------------------------

  /** The value of a fresh or stale entry, or undefined. */
  async get(key) {
    const raw = await this._cmd(['CACHE.GET', String(key)]);
    return raw === null || raw === undefined ? undefined : this.options.deserialize(str(raw));
  }

  /** Store an entry (no lease: voids any lease another client holds on the key). */
  async set(key, value, options = {}) {
    const o = { ...this.options, ...options };
    const args = ['CACHE.SETTAGGED', String(key), o.serialize(value), ...this._lifetimeArgs(o)];
    if (o.cost) args.push('COST', String(Math.ceil(o.cost)));
    const tags = [].concat(o.tags ?? []);
    if (tags.length) args.push('TAGS', ...tags.map(String));
    return (await this._cmd(args)) !== null;
  }

  async delete(key) {
    return (await this._cmd(['DEL', String(key)])) > 0;
  }

  async tags(key) {
    return (await this._cmd(['CACHE.TAGS', String(key)])).map(str);
  }

  // --- invalidation -----------------------------------------------------------------

  /** Invalidate every entry carrying any of `tags` (a tag may be a pattern). Resolves to the count. */
  async invalidateTags(tags, { soft = false } = {}) {
    const list = Array.isArray(tags) ? tags : [tags];
    const replies = await Promise.all(list.map((t) => this._cmd(['CACHE.INVALIDATETAG', String(t), ...(soft ? ['SOFT'] : [])])));
    return replies.reduce((a, b) => a + Number(b), 0);
  }

  softInvalidateTags(tags) {
    return this.invalidateTags(tags, { soft: true });
  }

  /** Invalidate every entry whose key matches `pattern` (KEYS syntax). */
  async invalidate(pattern, { soft = false } = {}) {
    return Number(await this._cmd(['CACHE.INVALIDATE', String(pattern), ...(soft ? ['SOFT'] : [])]));
  }

  softInvalidate(pattern) {
    return this.invalidate(pattern, { soft: true });
  }

  /** Invalidate exactly one key (its special characters escaped). */
  invalidateKey(key, options) {
    return this.invalidate(escapePattern(key), options);
  }

  // --- stats --------------------------------------------------------------------------

  /** CACHE.STATS of the selected database, or of one namespace, or { namespace: stats }. */
  async stats({ namespace, namespaces = false } = {}) {
    const args = ['CACHE.STATS'];
    if (namespace !== undefined) args.push('NAMESPACE', String(namespace));
    else if (namespaces) args.push('NAMESPACES');
    return statsObject(await this._cmd(args));
  }

  async resetStats() {
    await this._cmd(['CACHE.STATS', 'RESET']);
  }

  /** Close the pool of blocking connections, and the main client if the cache opened it. */
  async close() {
    this._closed = true;
    for (const c of [...this._blockingAll]) this._drop(c);
    this.client.off('error', this._onClientError);
    if (this._ownsClient) {
      const c = this.client;
      try {
        if (c.isOpen) await (c.close ? c.close() : c.quit());
      } catch {
        destroyClient(c);
      }
    }
  }
}

module.exports = { Cache, DEFAULTS };
