'use strict';
// NearCache: an in-process copy (L1) of hot entries in front of the module, kept right by the
// module's invalidation messages and by CLIENT TRACKING.
//
// Reads go L1 -> CACHE.GET key WITHMETA (tracked; its reply is stored locally) -> the Cache's
// CACHE.GETORMARK path (leases, WAIT, STALE refresh) on a miss or a stale entry.
//
// Invalidation, RESP2 with REDIRECT (works on Redis 6+, 7.0 and Valkey alike, whatever the
// client library's version checks): a connection of our own (lib/resp.js) subscribes to
// `__redis__:invalidate` and `__cache@<db>__:invalidate`, and the reading connection runs
// `CLIENT TRACKING on REDIRECT <its id>`.
// - a tracking push drops the named keys (O(keys)); a nil push (FLUSHDB) drops everything;
// - `tag t` / `softtag t` / `pattern p` / `softpattern p` install a rule at once (O(1)): from
//   then on no copy it covers is served (hard) or served as fresh (soft), because every local
//   read checks the rules that apply to the copy; an incremental sweep then applies the rule to
//   each copy it covers (through the tag index or the key's namespace) and frees their memory
//   a few thousand copies per event-loop turn, so no message costs O(local cache) at once;
// - when either connection drops, everything local is dropped and no copy is kept until
//   tracking is back on (messages sent meanwhile are lost).

const { EventEmitter } = require('node:events');
const { Cache } = require('./cache');
const { RespConnection } = require('./resp');
const { globToRegExp, isPattern, literalPrefix } = require('./glob');
const { createOwnClient, str, sleep, withTimeout, destroyClient } = require('./util');

const TRACKING_CHANNEL = '__redis__:invalidate';

class NearCache extends EventEmitter {
  /**
   * @param {string} url redis://[user:pass@]host:port/db
   * @param {object} [options] the Cache's options (ttl, tags, stale, waitMs, ...) plus:
   * @param {number} [options.maxEntries=10000] local copies kept (least recently used dropped)
   * @param {number} [options.maxAgeMs=Infinity] never serve a local copy older than this
   * @param {string} [options.delimiter=':'] the namespace delimiter (cache.namespace-delimiter)
   * @param {number} [options.sweepChunk=5000] copies a sweep visits per event-loop turn
   */
  constructor(url, options = {}) {
    super();
    const u = new URL(url);
    this.db = Number((u.pathname || '/').slice(1) || 0);
    this.channel = `__cache@${this.db}__:invalidate`;
    this.options = { maxEntries: 10000, maxAgeMs: Infinity, delimiter: ':', sweepChunk: 5000, ...options };
    this._connOpts = {
      host: u.hostname || '127.0.0.1',
      port: Number(u.port || 6379),
      tls: u.protocol === 'rediss:',
      username: u.username ? decodeURIComponent(u.username) : undefined,
      password: u.password ? decodeURIComponent(u.password) : undefined,
    };
    this.client = createOwnClient(url, { ...(options.clientOptions || {}), RESP: 2 });
    this.cache = new Cache(this.client, options);
    this.cache.on('error', (e) => this._error(e));
    this.cache.on('failsafe', (e) => this.emit('failsafe', e));
    this.deserialize = this.cache.options.deserialize;

    this._resetLocal();
    this._gen = 0; // rises with every rule installed
    this._recent = []; // the rules installed while reads were in flight: applied to their replies
    this._epoch = 0; // rises with every drop-everything
    this._active = false; // tracking on and subscribed: local copies may be kept
    this._reads = new Map(); // key -> { promise, dirty }
    this._closed = false;
    this.local = { hits: 0, misses: 0, stored: 0, evictions: 0, messages: 0, pushes: 0, pushedKeys: 0, dropAlls: 0, sweptCopies: 0, handlerMs: 0 };

    this.client.on('ready', () => this._enable());
    for (const ev of ['end', 'reconnecting']) this.client.on(ev, () => this._deactivate(`data connection ${ev}`));
    this.client.on('error', () => this._deactivate('data connection error'));
    this._subscriber = this._subscribeLoop();
  }

  _error(e) {
    if (this.listenerCount('error') > 0) this.emit('error', e);
  }

  _resetLocal() {
    this._entries = new Map(); // key -> { value, freshUntil, expireAt, tags, gen, storedAt, stale }
    this._tagIndex = new Map(); // tag -> Set(key)
    this._nsIndex = new Map(); // namespace -> Set(key)
    this._tagRules = new Map(); // tag -> { hard, soft } (gens)
    this._patternRules = []; // { on: 'key'|'tag', re, gen, soft }
    this._jobs = [];
  }

  // --- connections ------------------------------------------------------------------

  async _subscribeLoop() {
    let backoff = 50;
    while (!this._closed) {
      const sub = new RespConnection(this._connOpts);
      const closed = new Promise((resolve) => sub.once('close', resolve));
      this._sub = sub;
      try {
        await sub.connect();
        const id = await withTimeout(sub.command(['CLIENT', 'ID']), 2000, 'CLIENT ID');
        sub.on('message', (channel, payload) => this._onMessage(channel, payload));
        await withTimeout(sub.command(['SUBSCRIBE', TRACKING_CHANNEL, this.channel], 2), 2000, 'SUBSCRIBE');
        this._subId = id;
        backoff = 50;
        this._enable();
        await closed;
      } catch (e) {
        this._error(e);
        sub.close();
        await closed;
      }
      this._subId = undefined;
      this._deactivate('subscriber connection closed');
      if (this._closed) break;
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 2000);
    }
  }

  async _enable() {
    const subId = this._subId;
    if (this._closed || subId === undefined || !this.client.isReady) return;
    const epoch = this._epoch;
    try {
      await this.client.sendCommand(['CLIENT', 'TRACKING', 'on', 'REDIRECT', String(subId)]);
    } catch (e) {
      this._error(e);
      return;
    }
    if (epoch === this._epoch && subId === this._subId && !this._closed && !this._active) {
      this._active = true;
      this.emit('active');
    }
  }

  _deactivate(reason) {
    const had = this._active || this._entries.size > 0;
    this._active = false;
    this._dropAll();
    if (had) this.emit('inactive', reason);
  }

  /** Resolves once local copies are being kept (tracking on, subscribed). */
  ready(timeoutMs = 5000) {
    if (this._active) return Promise.resolve();
    return withTimeout(new Promise((resolve) => this.once('active', resolve)), timeoutMs, 'near cache activation');
  }

  get active() {
    return this._active;
  }

  // --- messages -----------------------------------------------------------------------

  _onMessage(channel, payload) {
    const at = performance.now();
    try {
      this._handle(channel, payload, at);
    } finally {
      this.local.handlerMs += performance.now() - at;
    }
  }

  _handle(channel, payload, at) {
    if (channel === TRACKING_CHANNEL) {
      this.local.pushes++;
      if (payload === null || payload === undefined) {
        this._dropAll(); // FLUSHDB / FLUSHALL, or tracking reset
        this.emit('invalidate', { kind: 'flush', arg: null, at });
        return;
      }
      const keys = Array.isArray(payload) ? payload : [payload];
      this.local.pushedKeys += keys.length;
      for (const k of keys) {
        const key = str(k);
        const read = this._reads.get(key);
        if (read) read.dirty = true;
        this._dropKey(key);
      }
      this.emit('invalidate', { kind: 'keys', arg: keys.length, at });
      return;
    }
    if (channel !== this.channel) return;
    this.local.messages++;
    const text = str(payload);
    const sp = text.indexOf(' ');
    const kind = sp < 0 ? text : text.slice(0, sp);
    const arg = sp < 0 ? '' : text.slice(sp + 1);
    this._applyRule(kind, arg);
    this.emit('invalidate', { kind, arg, at, rulesAt: performance.now() });
  }

  // Install the rule for one invalidation (O(1), or O(1) + a compiled pattern), then sweep.
  _applyRule(kind, arg) {
    const soft = kind === 'softtag' || kind === 'softpattern';
    const gen = ++this._gen;
    if (this._reads.size) this._recent.push({ gen, kind, arg, soft, re: isPattern(arg) ? globToRegExp(arg) : null });
    if (kind === 'tag' || kind === 'softtag') {
      if (!isPattern(arg)) {
        const rule = this._tagRules.get(arg) || { hard: 0, soft: 0 };
        rule[soft ? 'soft' : 'hard'] = gen;
        this._tagRules.set(arg, rule);
        const index = this._tagIndex;
        this._sweep(function* () { const s = index.get(arg); if (s) yield* s; }, () => {
          const r = this._tagRules.get(arg);
          if (!r) return;
          if (r[soft ? 'soft' : 'hard'] === gen) r[soft ? 'soft' : 'hard'] = 0;
          if (!r.hard && !r.soft) this._tagRules.delete(arg);
        });
      } else {
        const re = globToRegExp(arg);
        const index = this._tagIndex;
        this._patternRule({ on: 'tag', re, gen, soft }, function* () { for (const [t, s] of index) if (re.test(t)) yield* s; });
      }
    } else if (kind === 'pattern' || kind === 'softpattern') {
      if (!isPattern(arg)) {
        if (soft) { const e = this._entries.get(arg); if (e) e.stale = true; } else this._dropKey(arg);
        return;
      }
      const prefix = literalPrefix(arg);
      const d = this.options.delimiter;
      const nsEnd = d ? prefix.indexOf(d) : -1;
      let keysFn;
      if (nsEnd >= 0) { // every match is in one namespace: visit only its keys
        const index = this._nsIndex;
        const ns = prefix.slice(0, nsEnd);
        keysFn = function* () { const set = index.get(ns); if (set) yield* set; };
      } else {
        const entries = this._entries;
        keysFn = function* () { yield* entries.keys(); };
      }
      this._patternRule({ on: 'key', re: globToRegExp(arg), gen, soft }, keysFn);
    }
  }

  _patternRule(rule, keysFn) {
    this._patternRules.push(rule);
    this._sweep(keysFn, () => {
      const i = this._patternRules.indexOf(rule);
      if (i >= 0) this._patternRules.splice(i, 1);
    });
  }

  // Visit the candidate keys a few thousand per event-loop turn; each visit applies the rules.
  _sweep(keysFn, done) {
    const job = { it: keysFn(), done, epoch: this._epoch };
    this._jobs.push(job);
    if (this._jobs.length === 1) setImmediate(() => this._runJobs());
  }

  _runJobs() {
    let budget = this.options.sweepChunk;
    while (this._jobs.length && budget > 0) {
      const job = this._jobs[0];
      if (job.epoch !== this._epoch) { this._jobs.shift(); continue; }
      let finished = false;
      while (budget-- > 0) {
        const n = job.it.next();
        if (n.done) { finished = true; break; }
        const e = this._entries.get(n.value);
        if (e) { this.local.sweptCopies++; this._check(n.value, e); }
      }
      if (finished) { this._jobs.shift(); job.done(); this.emit('swept'); }
    }
    if (this._jobs.length) setImmediate(() => this._runJobs());
  }

  // Apply the rules to one copy: false when it was dropped. Marks it stale for soft rules.
  _check(key, e) {
    for (const t of e.tags) {
      const r = this._tagRules.get(t);
      if (!r) continue;
      if (r.hard > e.gen) { this._dropKey(key); return false; }
      if (r.soft > e.gen) e.stale = true;
    }
    for (const p of this._patternRules) {
      if (p.gen <= e.gen) continue;
      const hit = p.on === 'key' ? p.re.test(key) : e.tags.some((t) => p.re.test(t));
      if (!hit) continue;
      if (!p.soft) { this._dropKey(key); return false; }
      e.stale = true;
    }
    return true;
  }

  // --- the local store ----------------------------------------------------------------

  _ns(key) {
    const d = this.options.delimiter;
    const i = d ? key.indexOf(d) : -1;
    return i < 0 ? key : key.slice(0, i);
  }

  _store(key, value, freshUntil, expireAt, tags, gen) {
    this._dropKey(key);
    const e = { value, freshUntil, expireAt, tags, gen, storedAt: Date.now(), stale: false };
    this._entries.set(key, e);
    for (const t of tags) {
      let s = this._tagIndex.get(t);
      if (!s) this._tagIndex.set(t, (s = new Set()));
      s.add(key);
    }
    const ns = this._ns(key);
    let s = this._nsIndex.get(ns);
    if (!s) this._nsIndex.set(ns, (s = new Set()));
    s.add(key);
    this.local.stored++;
    while (this._entries.size > this.options.maxEntries) {
      this._dropKey(this._entries.keys().next().value);
      this.local.evictions++;
    }
  }

  _dropKey(key) {
    const e = this._entries.get(key);
    if (!e) return false;
    this._entries.delete(key);
    for (const t of e.tags) {
      const s = this._tagIndex.get(t);
      if (s && s.delete(key) && s.size === 0) this._tagIndex.delete(t);
    }
    const ns = this._ns(key);
    const s = this._nsIndex.get(ns);
    if (s && s.delete(key) && s.size === 0) this._nsIndex.delete(ns);
    return true;
  }

  _dropAll() {
    this._epoch++;
    this._recent = [];
    this.local.dropAlls++;
    this._resetLocal();
    for (const r of this._reads.values()) r.dirty = true;
  }

  /** The local copy of `key`, if any: { value, fresh } (no LRU touch, no counting). */
  peek(key) {
    const e = this._entries.get(key);
    if (!e || !this._check(key, e)) return undefined;
    const now = Date.now();
    if (now >= e.expireAt) { this._dropKey(key); return undefined; }
    return { value: e.value, fresh: this._fresh(e, now) };
  }

  _fresh(e, now) {
    return !e.stale && now < e.freshUntil && now - e.storedAt < this.options.maxAgeMs;
  }

  get size() {
    return this._entries.size;
  }

  // --- reads --------------------------------------------------------------------------

  /** The value, from L1, or the server, or computed (leases); see Cache#getOrCompute. */
  async getOrCompute(key, compute, options) {
    return (await this.getOrComputeResult(key, compute, options)).value;
  }

  /** Like Cache#getOrComputeResult, plus `local: true` when served from the local copy. */
  async getOrComputeResult(key, compute, options) {
    key = String(key);
    const e = this._entries.get(key);
    if (e && this._check(key, e)) {
      const now = Date.now();
      if (this._fresh(e, now)) {
        this.local.hits++;
        this._entries.delete(key); // most recently used last
        this._entries.set(key, e);
        return { value: e.value, state: 'HIT', local: true, stored: false, refreshing: false };
      }
      if (now >= e.expireAt) this._dropKey(key);
    }
    this.local.misses++;
    if (this._active) {
      let read;
      try {
        read = await this._readMeta(key);
      } catch (err) {
        this._error(err); // fall through to the lease path, which degrades by itself
      }
      if (read && read.state === 'HIT') return { value: read.value, state: 'HIT', local: false, stored: false, refreshing: false };
    }
    // Missing or stale on the server: leases (one computes or refreshes, the others wait or
    // are served STALE). GETORMARK is not tracked, so nothing is kept locally here: the next
    // read fetches the new value through CACHE.GET WITHMETA and keeps it.
    const r = await this.cache.getOrComputeResult(key, compute, options);
    return { ...r, local: false };
  }

  /** The value of a fresh or stale entry (L1, then CACHE.GET WITHMETA), or undefined. */
  async get(key) {
    key = String(key);
    const p = this.peek(key);
    if (p && p.fresh) {
      this.local.hits++;
      const e = this._entries.get(key);
      this._entries.delete(key); // most recently used last
      this._entries.set(key, e);
      return p.value;
    }
    this.local.misses++;
    const read = await this._readMeta(key);
    return read ? read.value : undefined;
  }

  // CACHE.GET key WITHMETA, one at a time per key; keeps a HIT locally when tracking was on
  // throughout, no push named the key meanwhile, and no rule installed meanwhile covers it
  // (a soft one: kept, as stale).
  _readMeta(key) {
    const inFlight = this._reads.get(key);
    if (inFlight) return inFlight.promise;
    const read = { dirty: false, gen: this._gen };
    const { gen } = read;
    const epoch = this._epoch;
    const active = this._active;
    read.promise = this.cache._cmd(['CACHE.GET', key, 'WITHMETA']).then((reply) => {
      if (reply === null || reply === undefined) return null;
      const [raw, state, freshUntil, expireAt, tags] = reply;
      const value = this.deserialize(str(raw));
      const st = str(state);
      if (st === 'HIT' && active && this._active && epoch === this._epoch && !read.dirty) {
        const tagList = (tags || []).map(str);
        const verdict = this._since(gen, key, tagList);
        if (verdict !== 'drop') {
          const f = Number(freshUntil);
          const x = Number(expireAt);
          this._store(key, value, f < 0 ? Infinity : f, x < 0 ? Infinity : x, tagList, gen);
          if (verdict === 'stale') this._entries.get(key).stale = true;
        }
      }
      return { value, state: st };
    }).finally(() => {
      this._reads.delete(key);
      this._pruneRecent();
    });
    this._reads.set(key, read);
    return read.promise;
  }

  // What the rules installed after `gen` say of a copy read before them: 'drop', 'stale' or ''.
  _since(gen, key, tags) {
    let verdict = '';
    for (const r of this._recent) {
      if (r.gen <= gen) continue;
      let hit;
      if (r.kind === 'tag' || r.kind === 'softtag') hit = r.re ? tags.some((t) => r.re.test(t)) : tags.includes(r.arg);
      else hit = r.re ? r.re.test(key) : key === r.arg;
      if (!hit) continue;
      if (!r.soft) return 'drop';
      verdict = 'stale';
    }
    return verdict;
  }

  // Forget the rules no read in flight started before.
  _pruneRecent() {
    if (this._reads.size === 0) { this._recent.length = 0; return; }
    if (this._recent.length < 256) return;
    let min = Infinity;
    for (const r of this._reads.values()) if (r.gen < min) min = r.gen;
    this._recent = this._recent.filter((r) => r.gen > min);
  }

  // --- writes and invalidation (applied locally at once: read-your-writes) --------------

  async set(key, value, options) {
    const r = await this.cache.set(key, value, options);
    this._dropKey(String(key));
    return r;
  }

  async delete(key) {
    const r = await this.cache.delete(key);
    this._dropKey(String(key));
    return r;
  }

  async invalidateTags(tags, { soft = false } = {}) {
    const n = await this.cache.invalidateTags(tags, { soft });
    for (const t of Array.isArray(tags) ? tags : [tags]) this._applyRule(soft ? 'softtag' : 'tag', String(t));
    return n;
  }

  softInvalidateTags(tags) {
    return this.invalidateTags(tags, { soft: true });
  }

  async invalidate(pattern, { soft = false } = {}) {
    const n = await this.cache.invalidate(pattern, { soft });
    this._applyRule(soft ? 'softpattern' : 'pattern', String(pattern));
    return n;
  }

  softInvalidate(pattern) {
    return this.invalidate(pattern, { soft: true });
  }

  stats(options) {
    return this.cache.stats(options);
  }

  localStats() {
    return { ...this.local, entries: this._entries.size, tags: this._tagIndex.size, active: this._active, sweeping: this._jobs.length };
  }

  async close() {
    this._closed = true;
    this._active = false;
    if (this._sub) this._sub.close();
    await this._subscriber;
    await this.cache.close();
    try {
      if (this.client.isOpen) await this.client.close();
    } catch {
      destroyClient(this.client);
    }
  }
}

module.exports = { NearCache };
