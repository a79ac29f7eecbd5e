<?php

declare(strict_types=1);

namespace RedisCache\Connection;

use RedisCache\Exception\InvalidArgumentException;

/** @internal */
final class Connections
{
    /** Wrap a phpredis `Redis` or `RedisCluster`, a Predis `ClientInterface`, or return a Connection as it is. */
    public static function wrap(object $client): Connection
    {
        if ($client instanceof Connection) {
            return $client;
        }
        if (class_exists(\Redis::class, false) && $client instanceof \Redis) {
            return new PhpRedisConnection($client);
        }
        if (class_exists(\RedisCluster::class, false) && $client instanceof \RedisCluster) {
            return new PhpRedisClusterConnection($client);
        }
        if (interface_exists(\Predis\ClientInterface::class) && $client instanceof \Predis\ClientInterface) {
            return new PredisConnection($client);
        }
        throw new InvalidArgumentException(sprintf(
            'Expected a phpredis Redis or RedisCluster, or a Predis\ClientInterface, "%s" given.',
            get_debug_type($client)
        ));
    }

    /** default_socket_timeout in ms, what PHP streams use when the client sets no read timeout. */
    public static function defaultSocketTimeoutMs(): ?int
    {
        $seconds = (float) ini_get('default_socket_timeout');
        return $seconds > 0 ? (int) ($seconds * 1000) : null;
    }
}
