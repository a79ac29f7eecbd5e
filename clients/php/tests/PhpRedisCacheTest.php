<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use RedisCache\Cache;

final class PhpRedisCacheTest extends CacheTestCase
{
    protected static function clientName(): string
    {
        return 'phpredis';
    }

    public function testTheConnectionsOwnOptionsDoNotApplyToCacheCommands(): void
    {
        // An application's existing connection: its serializer and prefix are for its own
        // calls; rawCommand() applies neither, so the cache reads and writes the same bytes.
        $redis = $this->client();
        $redis->setOption(\Redis::OPT_SERIALIZER, \Redis::SERIALIZER_PHP);
        $redis->setOption(\Redis::OPT_PREFIX, 'legacy:');
        $cache = new Cache($redis);
        $this->assertSame(['a' => 1], $cache->getOrCompute('k', fn() => ['a' => 1], 60));
        $this->assertSame(['a' => 1], $cache->getOrCompute('k', fn() => 'x', 60));
        $this->assertSame(serialize(['a' => 1]), $this->r->rawCommand('CACHE.GET', 'k'));
        $this->assertSame(0, $this->r->exists('legacy:k'));
    }

    public function testReplyLiteralModeWorksToo(): void
    {
        $redis = $this->client();
        $redis->setOption(\Redis::OPT_REPLY_LITERAL, true);
        $cache = new Cache($redis);
        $this->assertTrue($cache->set('k', 'v'));
        $this->assertSame('v', $cache->getOrCompute('k', fn() => 'x', 60));
        $this->assertSame('w', $cache->getOrCompute('k2', fn() => 'w', 60));
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
    }

    public function testWaitIsKeptUnderTheReadTimeout(): void
    {
        $redis = $this->client();
        $redis->setOption(\Redis::OPT_READ_TIMEOUT, 1.0);
        $cache = new Cache($redis);
        $this->raw()->rawCommand('CACHE.GETORMARK', 'held', 'LEASE', '10000');
        // WAIT 5000 would outlast the 1 s read timeout; it is clamped to 500 ms, so no timeout.
        $this->assertSame('mine', $cache->getOrCompute('held', fn() => 'mine', 60, waitMs: 5000, retries: 0));
        $this->assertSame(['PENDING', 'gave-up'], $cache->lastTrace());
    }

    public function testAClientThatNeverConnectedComputesWithoutCaching(): void
    {
        $sock = stream_socket_server('tcp://127.0.0.1:0');
        $name = stream_socket_get_name($sock, false);
        fclose($sock); // a port nobody listens on
        $port = (int) substr($name, strrpos($name, ':') + 1);
        $redis = new \Redis();
        try {
            $redis->connect('127.0.0.1', $port, 0.5);
        } catch (\RedisException) {
            // what an application sees at startup when Redis is down; it keeps going
        }
        $cache = new Cache($redis);
        $this->assertSame('computed', $cache->getOrCompute('k', fn() => 'computed', 60));
        $this->assertSame(['unreachable'], $cache->lastTrace());
        $this->assertSame('d', $cache->get('k', 'd'));
        $this->assertFalse($cache->set('k', 1));
        $this->assertSame(['k' => null], $cache->getMultiple(['k']));
    }

    public function testDeferredRefreshRunsAtShutdown(): void
    {
        $cache = new Cache($this->client(), ['stale' => 60]);
        $cache->set('page', 'v1', 60, ['pages']);
        $cache->invalidateTags(['pages'], true);
        $script = sprintf(<<<'PHP'
            require %s;
            $r = new Redis();
            $r->connect('127.0.0.1', %d);
            $cache = new RedisCache\Cache($r, ['defer_refresh' => true, 'stale' => 60]);
            echo $cache->getOrCompute('page', fn() => 'v2', 60, ['pages']), ' ', implode(',', $cache->lastTrace());
            PHP, var_export(dirname(__DIR__) . '/autoload.php', true), TestServer::shared()->port);
        $p = proc_open([PHP_BINARY, '-r', $script], [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $out = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $this->assertSame(0, proc_close($p), $out);
        $this->assertSame('v1 STALE,refresh,deferred', $out, 'the response had the stale value');
        $this->assertSame('v2', $cache->get('page'), 'refreshed when the script ended');
        $this->assertSame('HIT', $this->r->rawCommand('CACHE.GETORMARK', 'page')[0]);
    }
}
