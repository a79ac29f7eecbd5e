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

    public function testAClientThatNeverConnectedComputesWithoutCaching(): void
    {
        $sock = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($sock, false);
        fclose($sock); // a port nobody listens on
        $port = (int) substr($name, strrpos($name, ':') + 1);
        $redis = new \Predis\Client(['host' => '127.0.0.1', 'port' => $port, 'timeout' => 0.5]);
        $cache = new Cache($redis);
        $this->assertSame('computed', $cache->getOrCompute('k', fn() => 'computed', 60));
        $this->assertSame(['unreachable'], $cache->lastTrace());
        $this->assertSame('d', $cache->get('k', 'd'));
        $this->assertFalse($cache->set('k', 1));
        $this->assertSame(['k' => null], $cache->getMultiple(['k']));
    }
}
