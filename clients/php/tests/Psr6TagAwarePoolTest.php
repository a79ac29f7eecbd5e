<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use Cache\IntegrationTests\CachePoolTest;
use RedisCache\Symfony\TagAwarePool;

/** PSR-6's compliance suite (cache/integration-tests' CachePoolTest), unchanged, on TagAwarePool (phpredis). */
final class Psr6TagAwarePoolTest extends CachePoolTest
{
    public function createCachePool()
    {
        if (!interface_exists(\Symfony\Component\Cache\Adapter\TagAwareAdapterInterface::class)) {
            $this->markTestSkipped('symfony/cache is not installed (Debian: php-symfony-cache)');
        }
        return new TagAwarePool(TestServer::shared()->phpredis(), 'pool');
    }
}
