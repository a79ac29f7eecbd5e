<?php

declare(strict_types=1);

namespace RedisCache\Exception;

/** The server answered with an error reply (WRONGTYPE ..., ERR ...). The message is the server's text. */
final class ServerError extends CacheException
{
}
