<?php

declare(strict_types=1);

namespace RedisCache\Tests;

final class SymfonyPhpRedisTest extends SymfonyAdapterTestCase
{
    protected static function clientName(): string
    {
        return 'phpredis';
    }
}
