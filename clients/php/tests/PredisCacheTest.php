<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use RedisCache\Cache;

final class PredisCacheTest extends CacheTestCase
{
    protected static function clientName(): string
    {
        return 'predis';
    }

    public function testWaitIsKeptUnderTheReadTimeout(): void
    {
        $client = new \Predis\Client(['host' => '127.0.0.1', 'port' => TestServer::shared()->port, 'read_write_timeout' => 1]);
        $cache = new Cache($client);
        $this->raw()->rawCommand('CACHE.GETORMARK', 'held', 'LEASE', '10000');
        $this->assertSame('mine', $cache->getOrCompute('held', fn() => 'mine', 60, waitMs: 5000, retries: 0));
        $this->assertSame(['PENDING', 'gave-up'], $cache->lastTrace());
    }

    public function testAPipelineWithAnErrorLeavesTheConnectionUsable(): void
    {
        $this->r->set('plain', 'x');
        $cache = new Cache($this->client());
        $cache->set('a', 1);
        $this->assertSame(['a' => 1, 'plain' => 'd', 'b' => 'd'], $cache->getMultiple(['a', 'plain', 'b'], 'd'));
        $this->assertSame(1, $cache->get('a'));
    }
}
