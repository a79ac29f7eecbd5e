<?php

declare(strict_types=1);

namespace RedisCache\Tests;

final class Psr16IntegrationPhpRedisTest extends Psr16IntegrationTestCase
{
    protected static function clientName(): string
    {
        return 'phpredis';
    }
}
