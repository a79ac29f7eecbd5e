<?php

declare(strict_types=1);

namespace RedisCache;

use Psr\SimpleCache\CacheInterface;
use RedisCache\Connection\Connection;
use RedisCache\Connection\Connections;
use RedisCache\Exception\ConnectionError;
use RedisCache\Exception\InvalidArgumentException;
use RedisCache\Exception\ServerError;
use RedisCache\Serializer\JsonSerializer;
use RedisCache\Serializer\PhpSerializer;
use RedisCache\Serializer\RawSerializer;
use RedisCache\Serializer\Serializer;

/**
 * A PSR-16 cache whose entries are module entries (CACHE.SETTAGGED / CACHE.GET), with tags,
 * leases against stampedes, stale-while-revalidate and server-side stats on top.
 *
 *     $cache = new RedisCache\Cache($redis);                  // phpredis \Redis or Predis\Client
 *     $chart = $cache->getOrCompute('chart.6361819', fn() => buildChart(), 60, ['device-6361819']);
 *     $cache->invalidateTags(['device-6361819']);
 *
 * Options (all optional):
 * - prefix (''): prepended to every key; clear() invalidates `<prefix>*` (entries only, never
 *   FLUSHDB). With the empty prefix clear() invalidates every module entry of the database (and
 *   still no other key), so give caches that share a database a prefix each.
 * - strict_keys (true): PSR-16's key rules for get/set/has/delete/...*Multiple (no `{}()/\@:`);
 *   false accepts any non-empty string there too, as getOrCompute() always does (not PSR-16).
 * - default_ttl (null): seconds used when a TTL is null; null leaves it to the server's
 *   cache.default-ttl (0 there: no expiry).
 * - stale (0): stale window in seconds for what set()/getOrCompute() store (STALE).
 * - wait_ms (2000): how long a caller blocks in GETORMARK ... WAIT while another computes
 *   (clamped under the client's read timeout).
 * - lease_ms (null: the server's cache.lease-ms): how long a lease protects a computation.
 * - retries (3): more GETORMARK calls after a PENDING before computing without caching.
 * - serializer ('php'): 'php' (serialize()), 'json', 'raw' (strings as they are) or a Serializer.
 * - defer_refresh (false): serve stale/early-refresh values at once and refresh at shutdown.
 * - finish_request (false): with defer_refresh, call fastcgi_finish_request() first (PHP-FPM).
 * - on_event (null): callable(string $event, array $context), told of: unreachable,
 *   stale_served, lease_refused, gave_up, store_failed, undecodable, error.
 */
class Cache implements CacheInterface
{
    public const RESERVED_CHARACTERS = '{}()/\\@:';

    private Connection $connection;
    private Engine $engine;
    private Serializer $serializer;
    private string $prefix;
    private bool $strictKeys;
    private ?int $defaultTtl;
    private int $stale;

    /** @param array<string, mixed> $options see the class comment */
    public function __construct(object $client, array $options = [])
    {
        $known = ['prefix', 'strict_keys', 'default_ttl', 'stale', 'wait_ms', 'lease_ms', 'retries', 'serializer',
            'defer_refresh', 'finish_request', 'on_event'];
        if ($unknown = array_diff(array_keys($options), $known)) {
            throw new InvalidArgumentException('Unknown option(s): ' . implode(', ', $unknown));
        }
        $this->connection = Connections::wrap($client);
        $this->prefix = (string) ($options['prefix'] ?? '');
        $this->strictKeys = (bool) ($options['strict_keys'] ?? true);
        $this->defaultTtl = isset($options['default_ttl']) ? (int) $options['default_ttl'] : null;
        $this->stale = (int) ($options['stale'] ?? 0);
        $this->serializer = self::serializer($options['serializer'] ?? 'php');
        $onEvent = $options['on_event'] ?? null;
        if ($onEvent !== null && !is_callable($onEvent)) {
            throw new InvalidArgumentException('on_event must be callable');
        }
        $this->engine = new Engine(
            $this->connection,
            (int) ($options['wait_ms'] ?? 2000),
            isset($options['lease_ms']) ? (int) $options['lease_ms'] : null,
            (int) ($options['retries'] ?? 3),
            (bool) ($options['defer_refresh'] ?? false),
            (bool) ($options['finish_request'] ?? false),
            $onEvent,
        );
    }

    // ---------------------------------------------------------------- get-or-compute

    /**
     * The cached value of $key, computing it with $compute() when it is missing, by one caller
     * at a time (the others wait for its result, up to wait_ms).
     *
     * Keys here follow the module, not PSR-16: any non-empty string, ':' included
     * (`processed_data:6361819:2025-01-15`).
     *
     * @param callable(): mixed       $compute
     * @param null|int|\DateInterval  $ttl    fresh lifetime; null: default_ttl; <= 0: computed, not stored
     * @param list<string>            $tags
     * @param int|null                $stale  stale window (s); null: the stale option
     * @param bool                    $early  honour the server's early-refresh choice
     */
    public function getOrCompute(
        string $key,
        callable $compute,
        $ttl = null,
        array $tags = [],
        ?int $stale = null,
        ?int $waitMs = null,
        ?int $leaseMs = null,
        ?int $retries = null,
        bool $early = true,
    ): mixed {
        if ($key === '') {
            throw new InvalidArgumentException('Cache key length must be greater than zero.');
        }
        $ttlMs = $this->ttlMs($ttl);
        $tags = self::tags($tags);
        $stale ??= $this->stale;
        $produce = function () use ($compute, $ttlMs, $stale, $tags): Computed {
            $value = $compute();
            return new Computed($value, $this->serializer->serialize($value), $ttlMs, $stale, $tags);
        };
        $o = ['early' => $early];
        if ($waitMs !== null) {
            $o['wait_ms'] = $waitMs;
        }
        if ($leaseMs !== null) {
            $o['lease_ms'] = $leaseMs;
        }
        if ($retries !== null) {
            $o['retries'] = $retries;
        }
        try {
            return $this->engine->fetch($this->prefix . $key, $produce, [$this->serializer, 'unserialize'], $o);
        } catch (ServerError $e) {
            // e.g. WRONGTYPE: the key holds something that is not an entry. Do not fail the request.
            $this->engine->trace[] = 'error';
            $this->engine->event('error', ['key' => $key, 'exception' => $e]);
            return $compute();
        }
    }

    /** What the last getOrCompute() did (HIT, MISS, stored, STALE, refresh, ...): for tests and logs. */
    public function lastTrace(): array
    {
        return $this->engine->trace;
    }

    /** Run now the refreshes that defer_refresh queued for shutdown. */
    public function runDeferredRefreshes(): void
    {
        $this->engine->runDeferred();
    }

    // ---------------------------------------------------------------- invalidation and stats

    /**
     * Invalidate every entry carrying one of $tags (tags are per database, not prefixed, so a
     * Python job's tags and these are the same). Glob characters in a tag are matched literally.
     * SOFT: the entries turn stale (served as STALE while one caller refreshes each).
     *
     * @param list<string> $tags
     * @return int the number of entries invalidated
     */
    public function invalidateTags(array $tags, bool $soft = false): int
    {
        $commands = [];
        foreach (self::tags($tags) as $tag) {
            $commands[] = $soft ? ['CACHE.INVALIDATETAG', self::escape($tag), 'SOFT']
                : ['CACHE.INVALIDATETAG', self::escape($tag)];
        }
        return $this->sumReplies($commands);
    }

    /**
     * Invalidate the entries of this cache whose key (after the prefix) matches $pattern (the
     * KEYS/SCAN MATCH language: `report:*`, `user:?`, `[ab]*`).
     */
    public function invalidate(string $pattern, bool $soft = false): int
    {
        $args = ['CACHE.INVALIDATE', self::escape($this->prefix) . $pattern];
        if ($soft) {
            $args[] = 'SOFT';
        }
        return (int) $this->connection->command($args);
    }

    /**
     * The server's counters (CACHE.STATS) for this database, or for one namespace (the key part
     * before the first `:`); numbers as ints, hit_ratio as a float.
     *
     * @return array<string, int|float|string>
     */
    public function stats(?string $namespace = null): array
    {
        $args = ['CACHE.STATS'];
        if ($namespace !== null) {
            array_push($args, 'NAMESPACE', $namespace);
        }
        return self::fields($this->connection->command($args));
    }

    /** CACHE.STATS RESET: zero the counters of this database. */
    public function resetStats(): void
    {
        $this->connection->command(['CACHE.STATS', 'RESET']);
    }

    /** The tags of an entry (CACHE.TAGS). */
    public function tagsOf(string $key): array
    {
        $reply = $this->connection->command(['CACHE.TAGS', $this->prefix . $key]);
        return is_array($reply) ? $reply : [];
    }

    // ---------------------------------------------------------------- PSR-16

    public function get($key, $default = null): mixed
    {
        $this->checkKey($key);
        try {
            $payload = $this->connection->command(['CACHE.GET', $this->prefix . $key]);
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event($e instanceof ConnectionError ? 'unreachable' : 'error', ['key' => $key, 'exception' => $e]);
            return $default;
        }
        return $this->decodeOr($key, $payload, $default);
    }

    /**
     * @param null|int|\DateInterval $ttl
     * @param list<string>           $tags (not in PSR-16) tags for the entry
     */
    public function set($key, $value, $ttl = null, array $tags = []): bool
    {
        $this->checkKey($key);
        $ttlMs = $this->ttlMs($ttl);
        $tags = self::tags($tags);
        if ($ttlMs !== null && $ttlMs <= 0) {
            return $this->delete($key);
        }
        $computed = new Computed($value, $this->serializer->serialize($value), $ttlMs, $this->stale, $tags);
        try {
            return $this->engine->store($this->prefix . $key, $computed, null, null);
        } catch (ServerError $e) {
            $this->engine->event('error', ['key' => $key, 'exception' => $e]);
            return false;
        }
    }

    public function delete($key): bool
    {
        $this->checkKey($key);
        try {
            // INVALIDATE, not DEL: it also voids a lease on the key, so a computation that read the
            // old data cannot store it after this delete.
            $this->connection->command(['CACHE.INVALIDATE', self::escape($this->prefix . $key)]);
            return true;
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('error', ['key' => $key, 'exception' => $e]);
            return false;
        }
    }

    /** Remove this cache's entries: CACHE.INVALIDATE <prefix>* (never FLUSHDB). */
    public function clear(): bool
    {
        try {
            $this->connection->command(['CACHE.INVALIDATE', self::escape($this->prefix) . '*']);
            return true;
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('error', ['exception' => $e]);
            return false;
        }
    }

    public function getMultiple($keys, $default = null): iterable
    {
        $keys = $this->keyList($keys);
        $out = [];
        if ($keys === []) {
            return $out;
        }
        try {
            $replies = $this->connection->pipeline(array_map(fn($k) => ['CACHE.GET', $this->prefix . $k], $keys));
        } catch (ConnectionError $e) {
            $this->engine->event('unreachable', ['exception' => $e]);
            $replies = array_fill(0, count($keys), null);
        }
        foreach ($keys as $i => $key) {
            $reply = $replies[$i];
            $out[$key] = $reply instanceof ServerError ? $default : $this->decodeOr($key, $reply, $default);
        }
        return $out;
    }

    /** @param iterable<string|int, mixed> $values */
    public function setMultiple($values, $ttl = null, array $tags = []): bool
    {
        if (!is_iterable($values)) {
            throw new InvalidArgumentException(sprintf('Cache values must be iterable, "%s" given.', get_debug_type($values)));
        }
        $ttlMs = $this->ttlMs($ttl);
        $tags = self::tags($tags);
        $items = [];
        foreach ($values as $key => $value) {
            if (is_int($key)) {
                $key = (string) $key; // PHP turns array key '0' into 0
            }
            $this->checkKey($key);
            $items[$key] = $value;
        }
        if ($ttlMs !== null && $ttlMs <= 0) {
            return $this->deleteMultiple(array_map('strval', array_keys($items)));
        }
        $commands = [];
        foreach ($items as $key => $value) {
            $args = ['CACHE.SETTAGGED', $this->prefix . $key, $this->serializer->serialize($value)];
            if ($ttlMs !== null) {
                array_push($args, 'PX', (string) $ttlMs);
            }
            if ($this->stale > 0) {
                array_push($args, 'STALE', (string) $this->stale);
            }
            if ($tags !== []) {
                array_push($args, 'TAGS', ...$tags);
            }
            $commands[] = $args;
        }
        return $this->allOk($commands);
    }

    public function deleteMultiple($keys): bool
    {
        $keys = $this->keyList($keys);
        return $this->allOk(array_map(fn($k) => ['CACHE.INVALIDATE', self::escape($this->prefix . $k)], $keys));
    }

    public function has($key): bool
    {
        $this->checkKey($key);
        try {
            return (int) $this->connection->command(['EXISTS', $this->prefix . $key]) === 1;
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('unreachable', ['key' => $key, 'exception' => $e]);
            return false;
        }
    }

    // ---------------------------------------------------------------- helpers

    /** Escape the KEYS/SCAN MATCH special characters, so the module matches $s literally. */
    public static function escape(string $s): string
    {
        return addcslashes($s, '*?[]\\');
    }

    /** @internal PSR-16 key rules: a non-empty string without {}()/\@: */
    public static function validateKey(mixed $key): void
    {
        if (!is_string($key)) {
            throw new InvalidArgumentException(sprintf('Cache key must be string, "%s" given.', get_debug_type($key)));
        }
        if ($key === '') {
            throw new InvalidArgumentException('Cache key length must be greater than zero.');
        }
        if (strpbrk($key, self::RESERVED_CHARACTERS) !== false) {
            throw new InvalidArgumentException(sprintf(
                'Cache key "%s" contains reserved characters "%s".',
                $key,
                self::RESERVED_CHARACTERS
            ));
        }
    }

    /**
     * PSR-16 TTL to milliseconds: null -> default_ttl (null: the server's default); ints are
     * seconds; a DateInterval is added to now. <= 0 means "already expired".
     */
    private function ttlMs(mixed $ttl): ?int
    {
        if ($ttl === null) {
            return $this->defaultTtl === null ? null : $this->defaultTtl * 1000;
        }
        if (is_int($ttl)) {
            return $ttl <= 0 ? 0 : $ttl * 1000;
        }
        if ($ttl instanceof \DateInterval) {
            $now = new \DateTimeImmutable();
            $ms = (int) round(((float) $now->add($ttl)->format('U.u') - (float) $now->format('U.u')) * 1000);
            return $ms <= 0 ? 0 : $ms;
        }
        throw new InvalidArgumentException(sprintf(
            'Expiration date must be an integer, a DateInterval or null, "%s" given.',
            get_debug_type($ttl)
        ));
    }

    /** @return list<string> */
    private static function tags(array $tags): array
    {
        $out = [];
        foreach ($tags as $tag) {
            if (!is_string($tag) && !($tag instanceof \Stringable)) {
                throw new InvalidArgumentException(sprintf('Cache tag must be string, "%s" given.', get_debug_type($tag)));
            }
            $tag = (string) $tag;
            if ($tag === '') {
                throw new InvalidArgumentException('Cache tag length must be greater than zero.');
            }
            $out[$tag] = $tag;
        }
        return array_values($out);
    }

    /** @return list<string> */
    private function checkKey(mixed $key): void
    {
        if ($this->strictKeys) {
            self::validateKey($key);
        } elseif (!is_string($key) || $key === '') {
            self::validateKey($key); // the same messages for non-strings and ''
        }
    }

    private function keyList(mixed $keys): array
    {
        if (!is_iterable($keys)) {
            throw new InvalidArgumentException(sprintf('Cache keys must be iterable, "%s" given.', get_debug_type($keys)));
        }
        $out = [];
        foreach ($keys as $key) {
            $this->checkKey($key); // an int is not a key here (only as an array key in setMultiple)
            $out[] = $key;
        }
        return $out;
    }

    private function decodeOr(string $key, mixed $payload, mixed $default): mixed
    {
        if ($payload === null) {
            return $default;
        }
        try {
            return $this->serializer->unserialize((string) $payload);
        } catch (\UnexpectedValueException $e) {
            $this->engine->event('undecodable', ['key' => $key, 'exception' => $e]);
            return $default;
        }
    }

    /** @param list<list<string>> $commands */
    private function allOk(array $commands): bool
    {
        if ($commands === []) {
            return true;
        }
        try {
            $replies = $this->connection->pipeline($commands);
        } catch (ConnectionError $e) {
            $this->engine->event('unreachable', ['exception' => $e]);
            return false;
        }
        foreach ($replies as $reply) {
            if ($reply === null || $reply instanceof ServerError) {
                return false;
            }
        }
        return true;
    }

    /** @param list<list<string>> $commands */
    private function sumReplies(array $commands): int
    {
        $total = 0;
        foreach ($this->connection->pipeline($commands) as $reply) {
            if ($reply instanceof ServerError) {
                throw $reply;
            }
            $total += (int) $reply;
        }
        return $total;
    }

    /** RESP2 flat field/value list (or an already-keyed map) to an array; numbers typed. */
    public static function fields(mixed $reply): array
    {
        if (!is_array($reply)) {
            return [];
        }
        $pairs = [];
        if (array_is_list($reply)) {
            for ($i = 0; $i + 1 < count($reply); $i += 2) {
                $pairs[(string) $reply[$i]] = $reply[$i + 1];
            }
        } else {
            $pairs = $reply;
        }
        foreach ($pairs as $field => $value) {
            if (is_string($value) && is_numeric($value)) {
                $pairs[$field] = $field === 'hit_ratio' || str_contains($value, '.') ? (float) $value : (int) $value;
            }
        }
        return $pairs;
    }

    private static function serializer(mixed $s): Serializer
    {
        return match (true) {
            $s instanceof Serializer => $s,
            $s === 'php' => new PhpSerializer(),
            $s === 'json' => new JsonSerializer(),
            $s === 'raw' => new RawSerializer(),
            default => throw new InvalidArgumentException('serializer must be "php", "json", "raw" or a Serializer'),
        };
    }
}
