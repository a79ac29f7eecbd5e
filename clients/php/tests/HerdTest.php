<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use PHPUnit\Framework\TestCase;
use RedisCache\Cache;
use RedisCache\Symfony\TagAwareAdapter;

/**
 * The stampede: 200 concurrent callers (pcntl_fork processes, each with its own connection) of
 * one missing key whose computation takes 200 ms make exactly one computation; the other 199
 * wait in GETORMARK ... WAIT and are served the stored value.
 */
final class HerdTest extends TestCase
{
    private const CALLERS = 200;
    private const COMPUTE_MS = 200;

    protected function setUp(): void
    {
        if (!function_exists('pcntl_fork')) {
            $this->markTestSkipped('pcntl is not available');
        }
    }

    public function testPsr16CacheOnPhpRedis(): void
    {
        $this->herd(fn() => new Cache(TestServer::shared()->phpredis(), ['wait_ms' => 5000]),
            fn(Cache $c, callable $compute) => [$c->getOrCompute('herd:report', $compute, 60, ['herd']), $c->lastTrace()]);
    }

    public function testPsr16CacheOnPredis(): void
    {
        if (!class_exists(\Predis\Client::class)) {
            $this->markTestSkipped('Predis is not installed (Debian: php-nrk-predis)');
        }
        $this->herd(fn() => new Cache(TestServer::shared()->predis(), ['wait_ms' => 5000]),
            fn(Cache $c, callable $compute) => [$c->getOrCompute('herd:report', $compute, 60, ['herd']), $c->lastTrace()]);
    }

    public function testSymfonyAdapterOnPhpRedis(): void
    {
        if (!interface_exists(\Symfony\Contracts\Cache\TagAwareCacheInterface::class)) {
            $this->markTestSkipped('symfony/cache-contracts is not installed (Debian: php-symfony-cache)');
        }
        $this->herd(fn() => new TagAwareAdapter(TestServer::shared()->phpredis(), 'herd', 60, ['wait_ms' => 5000]),
            fn(TagAwareAdapter $c, callable $compute) => [$c->get('report', fn($item) => $compute()), $c->lastTrace()]);
    }

    /**
     * @param callable(): object                 $makeCache  run in each child, after the fork
     * @param callable(object, callable): array $call        one caller: [value, trace]
     */
    private function herd(callable $makeCache, callable $call): void
    {
        $server = TestServer::shared();
        $r = $server->phpredis();
        $r->flushAll();
        $r->rawCommand('CACHE.STATS', 'RESET');
        $pids = [];
        for ($i = 0; $i < self::CALLERS; $i++) {
            $pid = pcntl_fork();
            $this->assertNotSame(-1, $pid, 'fork failed');
            if ($pid === 0) {
                $this->child($server, $makeCache, $call);
            }
            $pids[] = $pid;
        }
        try {
            // Start them all at once, once every child is connected and waiting.
            $deadline = microtime(true) + 60;
            while ((int) $r->get('herd:ready') < self::CALLERS && microtime(true) < $deadline) {
                usleep(20_000);
            }
            $this->assertSame(self::CALLERS, (int) $r->get('herd:ready'), 'every caller got ready');
            $r->rPush('herd:go', ...array_fill(0, self::CALLERS, 'go'));
            $deadline = microtime(true) + 60;
            foreach ($pids as $k => $pid) {
                while (pcntl_waitpid($pid, $status, WNOHANG) === 0) {
                    if (microtime(true) > $deadline) {
                        break 2;
                    }
                    usleep(10_000);
                }
                unset($pids[$k]);
            }
            $this->assertSame([], array_values($pids), 'every caller finished within 60 s');
        } finally {
            foreach ($pids as $pid) {
                posix_kill($pid, SIGKILL);
                pcntl_waitpid($pid, $status);
            }
        }
        $results = array_map(fn($j) => json_decode($j, true), $r->lRange('herd:results', 0, -1));
        $this->assertCount(self::CALLERS, $results, 'one result per caller');
        $this->assertSame(1, (int) $r->get('herd:computations'), 'exactly one computation');
        $values = array_count_values(array_map(fn($res) => $res[0], $results));
        $this->assertSame(['report-v1' => self::CALLERS], $values, 'every caller got the value');
        $computed = array_filter($results, fn($res) => $res[1] === ['MISS', 'stored']);
        $this->assertCount(1, $computed, 'one caller computed and stored');
        foreach ($results as [, $trace]) {
            if ($trace !== ['MISS', 'stored']) {
                $this->assertSame('HIT', end($trace), 'the others were served the stored value: ' . json_encode($trace));
            }
        }
        $stats = Cache::fields($r->rawCommand('CACHE.STATS'));
        $this->assertSame(1, $stats['leases_granted']);
        $this->assertSame(1, $stats['sets']);
        fwrite(STDERR, sprintf("\n[herd] %s: %d callers, %d computation(s), %d waits woken by the set\n",
            $this->getName(), self::CALLERS, (int) $r->get('herd:computations'), $stats['wait_woken_by_set'] ?? -1));
    }

    /** A caller: connect, wait for the start, call, report, and end without PHPUnit's shutdown. */
    private function child(TestServer $server, callable $makeCache, callable $call): never
    {
        try {
            $r = $server->phpredis();
            $cache = $makeCache();
            $r->incr('herd:ready');
            $r->blPop(['herd:go'], 30);
            $compute = function () use ($r): string {
                $r->incr('herd:computations');
                usleep(self::COMPUTE_MS * 1000);
                return 'report-v1';
            };
            [$value, $trace] = $call($cache, $compute);
            $r->rPush('herd:results', json_encode([$value, $trace]));
        } catch (\Throwable $e) {
            try {
                TestServer::shared()->phpredis()->rPush('herd:results', json_encode(['error: ' . $e->getMessage(), []]));
            } catch (\Throwable) {
            }
        }
        posix_kill(posix_getpid(), SIGKILL);
        exit(1);
    }
}
