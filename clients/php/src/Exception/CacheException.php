<?php

declare(strict_types=1);

namespace RedisCache\Exception;

/** A cache operation failed on the server side (an error reply the cache cannot recover from). */
class CacheException extends \RuntimeException implements \Psr\SimpleCache\CacheException
{
}
