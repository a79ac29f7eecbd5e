<?php

declare(strict_types=1);

namespace RedisCache\Connection;

use RedisCache\Exception\ConnectionError;

/**
 * phpredis (ext-redis) in its default mode.
 *
 * Only rawCommand() is used, so the connection's OPT_SERIALIZER, OPT_COMPRESSION and OPT_PREFIX
 * never apply to cache commands (rawCommand neither serialises nor prefixes), and
 * OPT_REPLY_LITERAL may be on or off. In the default mode a status reply (+OK) reads as `true`
 * and a nil as `false`; an error reply also returns `false`, with its text in getLastError(),
 * which is how the two are told apart here.
 *
 * @internal
 */
final class PhpRedisConnection implements Connection
{
    use PhpRedisReplies;

    public function __construct(private \Redis $redis)
    {
    }

    public function command(array $args): mixed
    {
        try {
            // On a connection that never connected (or was closed), phpredis throws
            // "Redis server went away" from every method, clearLastError() included.
            $this->redis->clearLastError();
            $reply = $this->redis->rawCommand(...$args);
            $error = $reply === false ? $this->redis->getLastError() : null;
        } catch (\RedisException $e) {
            throw new ConnectionError($e->getMessage(), 0, $e);
        }
        return self::settle($reply, $error, $this->redis);
    }

    public function pipeline(array $commands): array
    {
        if ($commands === []) {
            return [];
        }
        try {
            $pipe = $this->redis->multi(\Redis::PIPELINE);
            foreach ($commands as $args) {
                $pipe->rawCommand(...$args);
            }
            $replies = $pipe->exec();
            $this->redis->clearLastError();
        } catch (\RedisException $e) {
            throw new ConnectionError($e->getMessage(), 0, $e);
        }
        if (!is_array($replies) || count($replies) !== count($commands)) {
            throw new ConnectionError('pipeline did not return one reply per command');
        }
        return array_map([self::class, 'normalise'], array_values($replies));
    }

    public function readTimeoutMs(): ?int
    {
        try {
            $seconds = (float) $this->redis->getReadTimeout();
        } catch (\RedisException) {
            return Connections::defaultSocketTimeoutMs(); // not connected: the command will say so
        }
        if ($seconds < 0) {
            return null;
        }
        return $seconds > 0 ? (int) ($seconds * 1000) : Connections::defaultSocketTimeoutMs();
    }
}
