<?php

declare(strict_types=1);

namespace RedisCache;

/**
 * What a computation produced, and how to store it.
 *
 * @internal
 */
final class Computed
{
    /**
     * @param mixed       $value   what the caller gets back
     * @param string|null $payload the bytes to store; null: do not store
     * @param int|null    $ttlMs   fresh lifetime; null: the server's cache.default-ttl; <= 0: do not store
     * @param int         $staleS  stale window after the fresh lifetime, seconds
     * @param list<string> $tags
     */
    public function __construct(
        public mixed $value,
        public ?string $payload,
        public ?int $ttlMs,
        public int $staleS = 0,
        public array $tags = [],
    ) {
    }
}
