<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use Cache\IntegrationTests\CachePoolTest;
use RedisCache\Cache;
use Symfony\Component\Cache\Adapter\Psr16Adapter;

/**
 * PSR-6 on top of the PSR-16 cache, through Symfony's own Psr16Adapter: cache/integration-tests'
 * CachePoolTest (PSR-6's compliance suite) unchanged, on phpredis.
 *
 * Symfony 5.4 validates PSR-6 keys with assert() only, so its invalid-key tests need
 * zend.assertions=1 (test.sh runs phpunit with it); without it they are skipped as Symfony's.
 */
final class Psr6ViaSymfonyPsr16AdapterTest extends CachePoolTest
{
    public function createCachePool()
    {
        if (!class_exists(Psr16Adapter::class)) {
            $this->markTestSkipped('symfony/cache is not installed (Debian: php-symfony-cache)');
        }
        if (ini_get('zend.assertions') !== '1') {
            foreach (['testGetItemInvalidKeys', 'testGetItemsInvalidKeys', 'testHasItemInvalidKeys',
                'testDeleteItemInvalidKeys', 'testDeleteItemsInvalidKeys'] as $test) {
                $this->skippedTests[$test] = "Symfony's Psr16Adapter checks PSR-6 keys with assert(): run with zend.assertions=1";
            }
        }
        return new Psr16Adapter(new Cache(TestServer::shared()->phpredis(), ['prefix' => 'psr6:']));
    }
}
