<?php

declare(strict_types=1);

namespace RedisCache\Symfony;

/** What Symfony's own adapters throw for an invalid key, tag, beta or expiry (PSR-6 and PSR-16). */
final class InvalidArgumentException extends \RedisCache\Exception\InvalidArgumentException implements \Psr\Cache\InvalidArgumentException
{
}
