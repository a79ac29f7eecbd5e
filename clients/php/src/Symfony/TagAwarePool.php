<?php

declare(strict_types=1);

namespace RedisCache\Symfony;

use Psr\Cache\CacheItemInterface;
use RedisCache\Cache;
use RedisCache\Computed;
use RedisCache\Exception\ConnectionError;
use RedisCache\Exception\ServerError;
use Symfony\Component\Cache\Adapter\TagAwareAdapterInterface;
use Symfony\Contracts\Cache\ItemInterface;

/**
 * TagAwareAdapter plus Symfony's PSR-6 pool API (TagAwareAdapterInterface: getItem(), save(),
 * saveDeferred(), commit(), ...), for code that uses the pool methods of RedisTagAwareAdapter:
 *
 *     $pool = new RedisCache\Symfony\TagAwarePool($redis, 'app', 3600);
 *     $item = $pool->getItem('stats.weekly');
 *     if (!$item->isHit()) {
 *         $pool->save($item->set(compute())->tag(['stats'])->expiresAfter(600));
 *     }
 *
 * Items are RedisCache\Symfony\Item (a Symfony ItemInterface), not Symfony's final CacheItem.
 * PSR-6 saves are plain writes (no lease): use get() with a callback for stampede protection.
 * Entries are shared with get(): an item saved here is a hit for get() and the other way round.
 * Deferred items are committed by commit() or when the pool is destroyed.
 */
class TagAwarePool extends TagAwareAdapter implements TagAwareAdapterInterface
{
    /** @var array<string, Item> */
    private array $deferred = [];

    public function getItem($key): Item
    {
        $key = self::validateKey($key);
        if (isset($this->deferred[$key])) {
            return $this->fromDeferred($key);
        }
        try {
            $payload = $this->connection->command(['CACHE.GET', $this->namespace . $key]);
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('error', ['key' => $key, 'exception' => $e]);
            $payload = null;
        }
        return $this->item($key, $payload);
    }

    /** @return array<string, Item> */
    public function getItems(array $keys = []): iterable
    {
        $keys = array_map([self::class, 'validateKey'], array_values($keys));
        $out = [];
        $fetch = [];
        foreach ($keys as $key) {
            if (!isset($this->deferred[$key])) {
                $fetch[] = $key;
            }
        }
        $replies = [];
        if ($fetch !== []) {
            try {
                $replies = $this->connection->pipeline(array_map(fn($k) => ['CACHE.GET', $this->namespace . $k], $fetch));
            } catch (ConnectionError $e) {
                $this->engine->event('unreachable', ['exception' => $e]);
                $replies = array_fill(0, count($fetch), null);
            }
        }
        $byKey = $fetch === [] ? [] : array_combine($fetch, $replies);
        foreach ($keys as $key) {
            $out[$key] = isset($this->deferred[$key]) ? $this->fromDeferred($key)
                : $this->item($key, $byKey[$key] instanceof ServerError ? null : $byKey[$key]);
        }
        return $out;
    }

    public function hasItem($key): bool
    {
        $key = self::validateKey($key);
        if (isset($this->deferred[$key])) {
            return $this->fromDeferred($key)->isHit();
        }
        try {
            return (int) $this->connection->command(['EXISTS', $this->namespace . $key]) === 1;
        } catch (ConnectionError|ServerError $e) {
            $this->engine->event('error', ['key' => $key, 'exception' => $e]);
            return false;
        }
    }

    public function clear(string $prefix = ''): bool
    {
        if ($prefix === '') {
            $this->deferred = [];
        } else {
            foreach (array_keys($this->deferred) as $key) {
                if (str_starts_with((string) $key, $prefix)) {
                    unset($this->deferred[$key]);
                }
            }
        }
        return parent::clear($prefix);
    }

    public function deleteItem($key): bool
    {
        $key = self::validateKey($key);
        unset($this->deferred[$key]);
        return $this->delete($key);
    }

    public function deleteItems(array $keys): bool
    {
        $keys = array_map([self::class, 'validateKey'], array_values($keys));
        $commands = [];
        foreach ($keys as $key) {
            unset($this->deferred[$key]);
            $commands[] = ['CACHE.INVALIDATE', Cache::escape($this->namespace . $key)];
        }
        return $this->run($commands);
    }

    public function save(CacheItemInterface $item): bool
    {
        if (!$item instanceof Item) {
            return false;
        }
        unset($this->deferred[$item->getKey()]);
        return $this->run([$this->saveCommand($item)]);
    }

    public function saveDeferred(CacheItemInterface $item): bool
    {
        if (!$item instanceof Item) {
            return false;
        }
        $this->deferred[$item->getKey()] = clone $item;
        return true;
    }

    public function commit(): bool
    {
        $items = $this->deferred;
        $this->deferred = [];
        return $this->run(array_map(fn(Item $item) => $this->saveCommand($item), array_values($items)));
    }

    public function __destruct()
    {
        if ($this->deferred !== []) {
            $this->commit();
        }
    }

    /** SETTAGGED for a save; an item already expired is deleted instead (PSR-6). */
    private function saveCommand(Item $item): array
    {
        $key = $this->namespace . $item->getKey();
        $expiry = $item->expiry();
        $ttlMs = $expiry === null ? null : (int) floor(($expiry - microtime(true)) * 1000);
        if ($ttlMs !== null && $ttlMs <= 0) {
            return ['CACHE.INVALIDATE', Cache::escape($key)];
        }
        $tags = $item->newTags();
        $meta = [];
        if ($expiry !== null) {
            $meta[ItemInterface::METADATA_EXPIRY] = $expiry;
        }
        if ($tags !== []) {
            $meta[ItemInterface::METADATA_TAGS] = array_combine($tags, $tags);
        }
        $args = ['CACHE.SETTAGGED', $key, serialize(['v' => $item->get(), 'm' => $meta])];
        if ($ttlMs !== null) {
            array_push($args, 'PX', (string) $ttlMs);
        }
        if ($this->stale > 0) {
            array_push($args, 'STALE', (string) $this->stale);
        }
        $stored = $this->storedTags($tags);
        if ($stored !== []) {
            array_push($args, 'TAGS', ...$stored);
        }
        return $args;
    }

    /** @param list<list<string>> $commands */
    private function run(array $commands): bool
    {
        if ($commands === []) {
            return true;
        }
        try {
            $ok = true;
            foreach ($this->connection->pipeline($commands) as $reply) {
                if ($reply === null || $reply instanceof ServerError) {
                    $ok = false;
                }
            }
            return $ok;
        } catch (ConnectionError $e) {
            $this->engine->event('unreachable', ['exception' => $e]);
            return false;
        }
    }

    private function item(string $key, mixed $payload): Item
    {
        if ($payload !== null) {
            try {
                $envelope = self::decode((string) $payload);
                return new Item($key, $envelope['v'], true, $envelope['m'], $this->defaultLifetime);
            } catch (\UnexpectedValueException $e) {
                $this->engine->event('undecodable', ['key' => $key, 'exception' => $e]);
            }
        }
        return new Item($key, null, false, [], $this->defaultLifetime);
    }

    /** A deferred item as getItem() returns it: a hit unless it expired meanwhile. */
    private function fromDeferred(string $key): Item
    {
        $saved = $this->deferred[$key];
        $expiry = $saved->expiry();
        if ($expiry !== null && $expiry <= microtime(true)) {
            return new Item($key, null, false, [], $this->defaultLifetime);
        }
        return new Item($key, $saved->get(), true, $saved->getMetadata(), $this->defaultLifetime);
    }
}
