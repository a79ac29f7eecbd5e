<?php

declare(strict_types=1);

namespace RedisCache\Exception;

/** The server could not be reached, or the connection broke or timed out. */
final class ConnectionError extends CacheException
{
}
