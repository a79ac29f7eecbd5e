'use strict';
// KeyvRedisCache: a Keyv storage adapter (and so a cache-manager v7 store) whose values are
// module entries: CACHE.SETTAGGED to write, CACHE.GET to read, so tags, tag invalidation and
// the server-side stats work for Keyv users too.

const { EventEmitter } = require('node:events');
const { AsyncLocalStorage } = require('node:async_hooks');
const { escapePattern, str, createOwnClient, connectBounded, withTimeout, destroyClient } = require('./util');

const tagContext = new AsyncLocalStorage();

class KeyvRedisCache extends EventEmitter {
  /**
   * @param {string|object} urlOrClient 'redis://host:port/db', or a node-redis client (yours:
   *   you connect and close it)
   * @param {object} [options]
   * @param {string[]} [options.tags] tags every entry written through this store carries
   * @param {(key: string) => string[]} [options.tagsFor] more tags for a key (the key as Keyv
   *   passes it, namespace prefix included)
   * @param {number} [options.commandTimeoutMs=2000]
   * @param {object} [options.clientOptions] node-redis createClient options (URL form only)
   */
  constructor(urlOrClient, options = {}) {
    super();
    if (typeof urlOrClient === 'string') {
      this.client = createOwnClient(urlOrClient, options.clientOptions);
      this._ownsClient = true;
    } else if (urlOrClient && typeof urlOrClient.sendCommand === 'function') {
      this.client = urlOrClient;
      this._ownsClient = false;
    } else {
      throw new TypeError('rediscache: KeyvRedisCache needs a redis:// URL or a node-redis client');
    }
    const url = typeof urlOrClient === 'string' ? urlOrClient : 'redis://';
    // Keyv reads opts.dialect / opts.url to decide whether the store can iterate.
    this.opts = { url, dialect: 'redis', commandTimeoutMs: 2000, ...options };
    this.namespace = undefined; // set by Keyv
    this.ttlSupport = true;
    // Connection errors of a client we opened are ours to report (Keyv listens to 'error');
    // a client you pass in is yours to listen to.
    this._onClientError = (e) => { if (this.listenerCount('error') > 0) this.emit('error', e); };
    if (this._ownsClient) this.client.on('error', this._onClientError);
    this._ready = connectBounded(this.client, 2000);
  }

  async _cmd(args) {
    if (this.client.isReady === false) await this._ready;
    const ms = this.opts.commandTimeoutMs;
    return withTimeout(this.client.sendCommand(args, ms > 0 ? { timeout: ms + 1000 } : undefined), ms, args[0]);
  }

  _tags(key) {
    const tags = new Set(this.opts.tags || []);
    if (typeof this.opts.tagsFor === 'function') for (const t of this.opts.tagsFor(key) || []) tags.add(String(t));
    for (const t of tagContext.getStore() || []) tags.add(String(t));
    return [...tags];
  }

  async get(key) {
    const raw = await this._cmd(['CACHE.GET', key]);
    return raw === null || raw === undefined ? undefined : str(raw);
  }

  async getMany(keys) {
    return Promise.all(keys.map((k) => this.get(k)));
  }

  async set(key, value, ttl) {
    const args = ['CACHE.SETTAGGED', key, typeof value === 'string' || Buffer.isBuffer(value) ? value : String(value)];
    if (typeof ttl === 'number' && ttl > 0) args.push('PX', String(Math.max(1, Math.round(ttl))));
    const tags = this._tags(key);
    if (tags.length) args.push('TAGS', ...tags);
    return (await this._cmd(args)) !== null;
  }

  async setMany(entries) {
    return Promise.all(entries.map(({ key, value, ttl }) => this.set(key, value, ttl)));
  }

  async delete(key) {
    return Number(await this._cmd(['DEL', key])) > 0;
  }

  async deleteMany(keys) {
    if (!keys.length) return false;
    return Number(await this._cmd(['DEL', ...keys])) > 0;
  }

  async has(key) {
    return (await this.get(key)) !== undefined;
  }

  async hasMany(keys) {
    return Promise.all(keys.map((k) => this.has(k)));
  }

  /** Removes the entries of this store's namespace (CACHE.INVALIDATE <namespace>:*), never FLUSHDB. */
  async clear() {
    const pattern = this.namespace ? `${escapePattern(this.namespace)}:*` : '*';
    await this._cmd(['CACHE.INVALIDATE', pattern]);
  }

  async* iterator(namespace) {
    const match = namespace ? `${escapePattern(namespace)}:*` : '*';
    let cursor = '0';
    do {
      const [next, keys] = await this._cmd(['SCAN', cursor, 'MATCH', match, 'COUNT', '200']);
      cursor = str(next);
      for (const k of keys) {
        const key = str(k);
        let value;
        try {
          value = await this.get(key);
        } catch {
          continue; // not an entry (WRONGTYPE): not ours
        }
        if (value !== undefined) yield [key, value];
      }
    } while (cursor !== '0');
  }

  // --- tags: the module's part of this store's API ----------------------------------

  /** Run fn() so that every entry it writes through this store (any store) carries `tags`. */
  withTags(tags, fn) {
    const outer = tagContext.getStore() || [];
    return tagContext.run([...outer, ...tags], fn);
  }

  /** Invalidate (hard by default) every entry carrying any of `tags`; resolves to the count. */
  async invalidateTags(tags, { soft = false } = {}) {
    const list = Array.isArray(tags) ? tags : [tags];
    const replies = await Promise.all(list.map((t) => this._cmd(['CACHE.INVALIDATETAG', String(t), ...(soft ? ['SOFT'] : [])])));
    return replies.reduce((a, b) => a + Number(b), 0);
  }

  /** Invalidate by key pattern; the pattern is matched against the full key (namespace included). */
  async invalidate(pattern, { soft = false } = {}) {
    return Number(await this._cmd(['CACHE.INVALIDATE', String(pattern), ...(soft ? ['SOFT'] : [])]));
  }

  /** The tags of an entry (key as stored, namespace prefix included). */
  async tagsOf(key) {
    return (await this._cmd(['CACHE.TAGS', key])).map(str);
  }

  async disconnect() {
    this.client.off('error', this._onClientError);
    if (!this._ownsClient) return;
    try {
      if (this.client.isOpen) await (this.client.close ? this.client.close() : this.client.quit());
    } catch {
      destroyClient(this.client);
    }
  }
}

module.exports = { KeyvRedisCache };
