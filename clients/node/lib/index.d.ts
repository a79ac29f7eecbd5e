// Types for rediscache (the Node client of the rediscache Redis module).
import { EventEmitter } from 'node:events';

export type State = 'HIT' | 'STALE' | 'MISS' | 'FAILSAFE' | 'UNCACHED';

export interface CacheOptions {
  /** fresh lifetime, seconds (fractions allowed), default 60 */
  ttl?: number;
  /** seconds after the fresh lifetime during which the value is served as STALE, default 0 */
  stale?: number;
  tags?: string[];
  /** total time a caller waits for another client's computation, default 5000 */
  waitMs?: number;
  /** lease protecting a computation; default the server's cache.lease-ms (10000) */
  leaseMs?: number;
  /** further lookups after PENDING, default 10 */
  retries?: number;
  /** STALE + lease: serve stale now, refresh in the background (default true) */
  staleWhileRevalidate?: boolean;
  /** one lookup per key at a time in this process (default true) */
  coalesce?: boolean;
  maxBlockingClients?: number;
  commandTimeoutMs?: number;
  connectTimeoutMs?: number;
  serialize?: (value: unknown) => string | Buffer;
  deserialize?: (raw: string) => unknown;
  scheduleRefresh?: (run: () => Promise<void>) => void;
  onFailSafe?: (event: FailSafeEvent) => void;
  /** node-redis createClient options, when the Cache opens its own client from a URL */
  clientOptions?: Record<string, unknown>;
}

export interface Result<T> {
  value: T;
  state: State;
  stored: boolean;
  refreshing: boolean;
  coalesced?: boolean;
  reason?: 'unreachable' | 'error' | 'pending';
  error?: unknown;
}

export interface FailSafeEvent {
  key: string;
  error: unknown;
  value: unknown;
  background: boolean;
}

export type Stats = Record<string, number | string>;

export class Cache extends EventEmitter {
  constructor(clientOrUrl: string | object, options?: CacheOptions);
  client: any;
  options: CacheOptions;
  getOrCompute<T>(key: string, compute: () => T | Promise<T>, options?: CacheOptions): Promise<T>;
  getOrComputeResult<T>(key: string, compute: () => T | Promise<T>, options?: CacheOptions): Promise<Result<T>>;
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown, options?: CacheOptions & { cost?: number }): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  tags(key: string): Promise<string[]>;
  invalidateTags(tags: string | string[], options?: { soft?: boolean }): Promise<number>;
  softInvalidateTags(tags: string | string[]): Promise<number>;
  invalidate(pattern: string, options?: { soft?: boolean }): Promise<number>;
  softInvalidate(pattern: string): Promise<number>;
  invalidateKey(key: string, options?: { soft?: boolean }): Promise<number>;
  stats(options?: { namespace?: string; namespaces?: boolean }): Promise<Stats & Record<string, any>>;
  resetStats(): Promise<void>;
  drain(): Promise<void>;
  close(): Promise<void>;
}

export interface KeyvRedisCacheOptions {
  tags?: string[];
  tagsFor?: (key: string) => string[];
  commandTimeoutMs?: number;
  clientOptions?: Record<string, unknown>;
}

export class KeyvRedisCache extends EventEmitter {
  constructor(urlOrClient: string | object, options?: KeyvRedisCacheOptions);
  opts: { url: string; dialect: 'redis' } & KeyvRedisCacheOptions;
  namespace?: string;
  get(key: string): Promise<string | undefined>;
  getMany(keys: string[]): Promise<Array<string | undefined>>;
  set(key: string, value: string, ttl?: number): Promise<boolean>;
  setMany(entries: Array<{ key: string; value: string; ttl?: number }>): Promise<boolean[]>;
  delete(key: string): Promise<boolean>;
  deleteMany(keys: string[]): Promise<boolean>;
  has(key: string): Promise<boolean>;
  hasMany(keys: string[]): Promise<boolean[]>;
  clear(): Promise<void>;
  iterator(namespace?: string): AsyncGenerator<[string, string]>;
  withTags<T>(tags: string[], fn: () => T): T;
  invalidateTags(tags: string | string[], options?: { soft?: boolean }): Promise<number>;
  invalidate(pattern: string, options?: { soft?: boolean }): Promise<number>;
  tagsOf(key: string): Promise<string[]>;
  disconnect(): Promise<void>;
}

export interface NearCacheOptions extends CacheOptions {
  maxEntries?: number;
  maxAgeMs?: number;
  delimiter?: string;
  sweepChunk?: number;
}

export class NearCache extends EventEmitter {
  constructor(url: string, options?: NearCacheOptions);
  cache: Cache;
  readonly active: boolean;
  readonly size: number;
  ready(timeoutMs?: number): Promise<void>;
  getOrCompute<T>(key: string, compute: () => T | Promise<T>, options?: CacheOptions): Promise<T>;
  getOrComputeResult<T>(key: string, compute: () => T | Promise<T>, options?: CacheOptions): Promise<Result<T> & { local: boolean }>;
  get<T = unknown>(key: string): Promise<T | undefined>;
  peek(key: string): { value: unknown; fresh: boolean } | undefined;
  set(key: string, value: unknown, options?: CacheOptions): Promise<boolean>;
  delete(key: string): Promise<boolean>;
  invalidateTags(tags: string | string[], options?: { soft?: boolean }): Promise<number>;
  softInvalidateTags(tags: string | string[]): Promise<number>;
  invalidate(pattern: string, options?: { soft?: boolean }): Promise<number>;
  softInvalidate(pattern: string): Promise<number>;
  stats(options?: { namespace?: string; namespaces?: boolean }): Promise<Stats>;
  localStats(): Record<string, number | boolean>;
  close(): Promise<void>;
}

export function escapePattern(s: string): string;
export class TimeoutError extends Error {}
