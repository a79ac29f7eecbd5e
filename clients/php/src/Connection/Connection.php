<?php

declare(strict_types=1);

namespace RedisCache\Connection;

use RedisCache\Exception\ConnectionError;
use RedisCache\Exception\ServerError;

/**
 * The few things the cache needs from a Redis client, whichever client it is.
 *
 * Replies are normalised the same way for every client: a nil is `null` (also inside arrays), a
 * status reply is its text (`"OK"`), bulk strings are strings, integers are ints, arrays are lists.
 *
 * @internal implementations: PhpRedisConnection (ext-redis), PredisConnection (predis/predis)
 */
interface Connection
{
    /**
     * Send one command.
     *
     * @param list<string> $args the command name and its arguments, binary safe
     * @throws ServerError     the server replied with an error
     * @throws ConnectionError the server could not be reached or the read timed out
     */
    public function command(array $args): mixed;

    /**
     * Send several commands in one round trip.
     *
     * @param list<list<string>> $commands
     * @return list<mixed> one normalised reply per command, in order; an error reply is a
     *         ServerError object in its place (phpredis cannot tell an error from a nil inside a
     *         pipeline: there both are `null`)
     * @throws ConnectionError
     */
    public function pipeline(array $commands): array;

    /** How long the client waits for a reply, in milliseconds; null when it waits forever. */
    public function readTimeoutMs(): ?int;
}
