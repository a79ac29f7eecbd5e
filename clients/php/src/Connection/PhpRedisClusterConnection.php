<?php

declare(strict_types=1);

namespace RedisCache\Connection;

use RedisCache\Exception\ConnectionError;

/**
 * phpredis's RedisCluster. Commands that name a key go to the key's primary
 * (`rawCommand($key, ...)`); the keyless ones (CACHE.INVALIDATE, INVALIDATETAG, STATS, TAGSCAN)
 * to any primary, which applies them to the whole cluster and answers once every shard has
 * (API.md, "Redis Cluster"). phpredis has no pipeline across slots here: one command at a time.
 *
 * @internal
 */
final class PhpRedisClusterConnection implements Connection
{
    use OneAtATime;
    use PhpRedisReplies;

    private const KEYLESS = ['CACHE.INVALIDATE' => true, 'CACHE.INVALIDATETAG' => true,
        'CACHE.STATS' => true, 'CACHE.TAGSCAN' => true];

    /** @param int|null $readTimeoutMs the read timeout the RedisCluster was made with (phpredis cannot tell) */
    public function __construct(private \RedisCluster $cluster, private ?int $readTimeoutMs = null)
    {
    }

    public function command(array $args): mixed
    {
        try {
            $this->cluster->clearLastError();
            $route = isset(self::KEYLESS[strtoupper($args[0])]) ? $this->anyPrimary() : $args[1];
            $reply = $this->cluster->rawCommand($route, ...$args);
            $error = $reply === false ? $this->cluster->getLastError() : null;
        } catch (\RedisClusterException|\RedisException $e) {
            throw new ConnectionError($e->getMessage(), 0, $e);
        }
        return self::settle($reply, $error, $this->cluster);
    }

    public function pipeline(array $commands): array
    {
        return $this->oneAtATime($commands);
    }

    public function readTimeoutMs(): ?int
    {
        return $this->readTimeoutMs ?? Connections::defaultSocketTimeoutMs();
    }

    /** @return array{0: string, 1: int} */
    private function anyPrimary(): array
    {
        $primaries = $this->cluster->_masters();
        if (!$primaries) {
            throw new ConnectionError('the cluster has no known primary');
        }
        return $primaries[array_rand($primaries)];
    }
}
