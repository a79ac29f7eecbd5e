<?php

declare(strict_types=1);

namespace RedisCache\Exception;

/** An invalid key, TTL, tag or iterable, as PSR-16 requires it to be reported. */
class InvalidArgumentException extends \InvalidArgumentException implements \Psr\SimpleCache\InvalidArgumentException
{
}
