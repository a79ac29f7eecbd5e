<?php

declare(strict_types=1);

namespace RedisCache\Connection;

use RedisCache\Exception\ServerError;

/**
 * What phpredis (Redis and RedisCluster alike) answers in its default mode, made plain: a
 * status reply (+OK) reads as `true` and a nil as `false`; an error reply also returns `false`,
 * with its text in getLastError(), which is how the two are told apart.
 *
 * @internal
 */
trait PhpRedisReplies
{
    /**
     * The reply of one command, or the ServerError it was.
     *
     * @param \Redis|\RedisCluster $client
     */
    private static function settle(mixed $reply, ?string $error, object $client): mixed
    {
        if ($reply === false) {
            if ($error !== null) {
                $client->clearLastError();
                throw new ServerError($error);
            }
            return null;
        }
        return self::normalise($reply);
    }

    private static function normalise(mixed $reply): mixed
    {
        if ($reply === true) {
            return 'OK';
        }
        if ($reply === false) {
            return null;
        }
        if (is_array($reply)) {
            return array_map([self::class, 'normalise'], $reply);
        }
        return $reply;
    }
}
