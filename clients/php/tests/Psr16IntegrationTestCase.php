<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use Cache\IntegrationTests\SimpleCacheTest;
use RedisCache\Cache;

/**
 * PSR-16's compliance suite, cache/integration-tests' SimpleCacheTest (Debian package
 * php-cache-integration-tests), run unchanged against RedisCache\Cache; no test is skipped.
 */
abstract class Psr16IntegrationTestCase extends SimpleCacheTest
{
    use ClientFactory;

    public function createSimpleCache()
    {
        return new Cache($this->client(), ['prefix' => 'psr16:' . static::clientName() . ':']);
    }
}
