<?php

declare(strict_types=1);

namespace RedisCache\Symfony;

use RedisCache\Cache;
use RedisCache\Computed;
use RedisCache\Connection\Connection;
use RedisCache\Connection\Connections;
use RedisCache\Engine;
use RedisCache\Exception\ConnectionError;
use RedisCache\Exception\ServerError;
use Symfony\Contracts\Cache\ItemInterface;
use Symfony\Contracts\Cache\TagAwareCacheInterface;

/**
 * Symfony's TagAwareCacheInterface on the module: in place of RedisTagAwareAdapter,
 *
 *     $cache = new RedisCache\Symfony\TagAwareAdapter($redis, 'app', 3600);
 *     $html = $cache->get('page.home', function (ItemInterface $item) {
 *         $item->expiresAfter(300)->tag(['pages', 'home']);
 *         return render();
 *     });
 *     $cache->invalidateTags(['pages']);
 *
 * Tags live in the module (one CACHE.INVALIDATETAG per tag, no tag-version keys); one caller
 * computes a missing item while the others wait for it (GETORMARK ... WAIT leases, in place of
 * Symfony's LockRegistry); early expiration is the module's (XFetch on the measured cost).
 *
 * - $beta: null or > 0: honour the module's early-refresh choice (its beta is the server's
 *   cache.early-beta, not this argument's value); 0: never refresh early; INF: recompute now.
 *   Negative: InvalidArgumentException, as in Symfony.
 * - Keys and tags follow Symfony's rules (no `{}()/\@:`). With a namespace, keys are stored as
 *   `<namespace>:<key>` and tags as `<namespace>:<tag>`, so two namespaces never invalidate
 *   each other, as with Symfony's adapters.
 * - A callback that throws while a stale value exists: the stale value is served (on_event
 *   'stale_served'); with none, the exception reaches the caller, as in Symfony.
 *
 * Options: those of RedisCache\Cache that concern get(): stale, wait_ms, lease_ms, retries,
 * defer_refresh, finish_request, on_event.
 */
class TagAwareAdapter implements TagAwareCacheInterface
{
    protected Connection $connection;
    protected Engine $engine;
    protected string $namespace;
    protected int $stale;

    /** @param array<string, mixed> $options */
    public function __construct(object $redis, string $namespace = '', protected int $defaultLifetime = 0, array $options = [])
    {
        $known = ['stale', 'wait_ms', 'lease_ms', 'retries', 'defer_refresh', 'finish_request', 'on_event'];
        if ($unknown = array_diff(array_keys($options), $known)) {
            throw new InvalidArgumentException('Unknown option(s): ' . implode(', ', $unknown));
        }
        $this->namespace = $namespace === '' ? '' : self::validateKey($namespace) . ':';
        $this->connection = Connections::wrap($redis);
        $this->stale = (int) ($options['stale'] ?? 0);
        $this->engine = new Engine(
            $this->connection,
            (int) ($options['wait_ms'] ?? 2000),
            isset($options['lease_ms']) ? (int) $options['lease_ms'] : null,
            (int) ($options['retries'] ?? 3),
            (bool) ($options['defer_refresh'] ?? false),
            (bool) ($options['finish_request'] ?? false),
            $options['on_event'] ?? null,
        );
    }

    public function get(string $key, callable $callback, ?float $beta = null, ?array &$metadata = null): mixed
    {
        self::validateKey($key);
        if ($beta !== null && $beta < 0) {
            throw new InvalidArgumentException(sprintf('Argument "$beta" provided to "%s::get()" must be a positive number, %f given.', static::class, $beta));
        }
        $produce = function (bool $hasPrevious, mixed $previous) use ($key, $callback): Computed {
            $item = new Item($key, $hasPrevious ? $previous['v'] : null, $hasPrevious, $hasPrevious ? $previous['m'] : [], $this->defaultLifetime);
            $save = true;
            $started = microtime(true);
            $value = $callback($item, $save);
            $item->set($value);
            $meta = [ItemInterface::METADATA_CTIME => (int) ceil((microtime(true) - $started) * 1000)];
            $expiry = $item->expiry();
            if ($expiry !== null) {
                $meta[ItemInterface::METADATA_EXPIRY] = $expiry;
            }
            $tags = $item->newTags();
            if ($tags !== []) {
                $meta[ItemInterface::METADATA_TAGS] = array_combine($tags, $tags);
            }
            $envelope = ['v' => $value, 'm' => $meta];
            $ttlMs = $expiry === null ? null : (int) floor(($expiry - microtime(true)) * 1000);
            $payload = $save ? serialize($envelope) : null;
            return new Computed($envelope, $payload, $ttlMs, $this->stale, $this->storedTags($tags));
        };
        $decode = [self::class, 'decode'];
        $o = ['force' => $beta === INF, 'early' => $beta !== 0.0];
        try {
            $envelope = $this->engine->fetch($this->namespace . $key, $produce, $decode, $o);
        } catch (ServerError $e) { // WRONGTYPE: a non-entry value under this key
            $this->engine->event('error', ['key' => $key, 'exception' => $e]);
            $envelope = $produce(false, null)->value;
        }
        $metadata = $envelope['m'];
        return $envelope['v'];
    }

    public function delete(string $key): bool
    {
        self::validateKey($key);
        try {
            $this->connection->command(['CACHE.INVALIDATE', Cache::escape($this->namespace . $key)]);
            return true;
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('error', ['key' => $key, 'exception' => $e]);
            return false;
        }
    }

    /**
     * Invalidate every item carrying one of $tags. $soft (not in the interface): turn them stale
     * instead, so each is served while one caller recomputes it.
     *
     * @param list<string> $tags
     */
    public function invalidateTags(array $tags, bool $soft = false): bool
    {
        $item = new Item('-', null, false, [], 0);
        $item->tag($tags); // Symfony's tag rules
        $commands = [];
        foreach ($this->storedTags($item->newTags()) as $tag) {
            $commands[] = $soft ? ['CACHE.INVALIDATETAG', Cache::escape($tag), 'SOFT'] : ['CACHE.INVALIDATETAG', Cache::escape($tag)];
        }
        try {
            foreach ($this->connection->pipeline($commands) as $reply) {
                if ($reply instanceof ServerError) {
                    throw $reply;
                }
            }
            return true;
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('error', ['exception' => $e]);
            return false;
        }
    }

    /** Remove this namespace's items (CACHE.INVALIDATE <namespace:><prefix>*), never FLUSHDB. */
    public function clear(string $prefix = ''): bool
    {
        try {
            $this->connection->command(['CACHE.INVALIDATE', Cache::escape($this->namespace . $prefix) . '*']);
            return true;
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('error', ['exception' => $e]);
            return false;
        }
    }

    /** CACHE.STATS, for this namespace when there is one (the module counts per `<namespace>:`). */
    public function stats(): array
    {
        $args = ['CACHE.STATS'];
        if ($this->namespace !== '') {
            array_push($args, 'NAMESPACE', substr($this->namespace, 0, -1));
        }
        return Cache::fields($this->connection->command($args));
    }

    /** What the last get() did (HIT, MISS, stored, ...), for tests and logs. */
    public function lastTrace(): array
    {
        return $this->engine->trace;
    }

    public function runDeferredRefreshes(): void
    {
        $this->engine->runDeferred();
    }

    /** @internal the stored form of an item: PHP-serialized ['v' => value, 'm' => metadata] */
    public static function decode(string $payload): array
    {
        $envelope = @unserialize($payload);
        if (!is_array($envelope) || !array_key_exists('v', $envelope) || !is_array($envelope['m'] ?? null)) {
            throw new \UnexpectedValueException('not an entry written by RedisCache\Symfony\TagAwareAdapter');
        }
        return $envelope;
    }

    /** @param list<string> $tags @return list<string> */
    protected function storedTags(array $tags): array
    {
        return $this->namespace === '' ? $tags : array_map(fn($t) => $this->namespace . $t, $tags);
    }

    protected static function validateKey(mixed $key): string
    {
        if (!is_string($key)) {
            throw new InvalidArgumentException(sprintf('Cache key must be string, "%s" given.', get_debug_type($key)));
        }
        if ($key === '') {
            throw new InvalidArgumentException('Cache key length must be greater than zero.');
        }
        if (strpbrk($key, ItemInterface::RESERVED_CHARACTERS) !== false) {
            throw new InvalidArgumentException(sprintf('Cache key "%s" contains reserved characters "%s".', $key, ItemInterface::RESERVED_CHARACTERS));
        }
        return $key;
    }
}
