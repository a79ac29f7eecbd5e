<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use PHPUnit\Framework\TestCase;
use RedisCache\Cache;
use RedisCache\Symfony\TagAwareAdapter;
use Symfony\Contracts\Cache\ItemInterface;

/**
 * phpredis's RedisCluster and Predis's cluster connection: keyed commands go to each key's primary, invalidations and stats are
 * the module's cluster-wide ones. One cluster of 3 primaries (module loaded, free ports) for the
 * class; skipped, with the reason, where a cluster cannot be formed.
 */
final class ClusterTest extends TestCase
{
    /** @var list<TestServer> */
    private static array $nodes = [];
    private static ?string $skip = null;
    /** @var list<int> */
    private static array $busPorts = [];

    public static function setUpBeforeClass(): void
    {
        try {
            for ($i = 0; $i < 3; $i++) {
                self::$busPorts[$i] = TestServer::freePort();
                $node = new TestServer(['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf',
                    '--cluster-node-timeout', '5000', '--cluster-port', (string) self::$busPorts[$i]]);
                $node->start();
                self::$nodes[] = $node;
            }
            $ranges = [[0, 5460], [5461, 10922], [10923, 16383]];
            foreach (self::$nodes as $i => $node) {
                $r = $node->phpredis();
                $reply = $r->rawCommand('CLUSTER', 'ADDSLOTSRANGE', (string) $ranges[$i][0], (string) $ranges[$i][1]);
                if ($reply !== true) {
                    throw new \RuntimeException('CLUSTER ADDSLOTSRANGE: ' . $r->getLastError());
                }
            }
            $first = self::$nodes[0]->phpredis();
            foreach (array_slice(self::$nodes, 1, null, true) as $i => $node) {
                $first->rawCommand('CLUSTER', 'MEET', '127.0.0.1', (string) $node->port, (string) self::$busPorts[$i]);
            }
            $deadline = microtime(true) + 30;
            do {
                $ok = true;
                foreach (self::$nodes as $node) {
                    $info = $node->phpredis()->rawCommand('CLUSTER', 'INFO');
                    $ok = $ok && str_contains($info, 'cluster_state:ok') && str_contains($info, 'cluster_known_nodes:3');
                }
                if (!$ok) {
                    usleep(100_000);
                }
            } while (!$ok && microtime(true) < $deadline);
            if (!$ok) {
                throw new \RuntimeException('the cluster did not reach cluster_state:ok in 30 s');
            }
        } catch (\Throwable $e) {
            self::$skip = 'no cluster here: ' . $e->getMessage();
        }
    }

    public static function tearDownAfterClass(): void
    {
        foreach (self::$nodes as $node) {
            $node->stop();
        }
        self::$nodes = [];
    }

    protected function setUp(): void
    {
        if (self::$skip !== null) {
            $this->markTestSkipped(self::$skip);
        }
        foreach (self::$nodes as $node) {
            $r = $node->phpredis();
            $r->flushAll();
            $r->rawCommand('CACHE.STATS', 'RESET', 'LOCAL');
        }
    }

    private function cluster(string $client): object
    {
        if ($client === 'predis') {
            if (!class_exists(\Predis\Client::class)) {
                $this->markTestSkipped('Predis is not installed (Debian: php-nrk-predis)');
            }
            return new \Predis\Client(array_map(fn(TestServer $n) => "tcp://127.0.0.1:{$n->port}", self::$nodes),
                ['cluster' => 'redis', 'parameters' => ['read_write_timeout' => 10]]);
        }
        if (!class_exists(\RedisCluster::class)) {
            $this->markTestSkipped('phpredis has no RedisCluster');
        }
        $seeds = array_map(fn(TestServer $n) => "127.0.0.1:{$n->port}", self::$nodes);
        return new \RedisCluster(null, $seeds, 2.0, 10.0);
    }

    public static function clients(): array
    {
        return ['phpredis RedisCluster' => ['phpredis'], 'Predis cluster' => ['predis']];
    }

    /** @return array<int, int> entries per node */
    private function entriesPerNode(): array
    {
        return array_map(fn(TestServer $n) => (int) $n->phpredis()->dbSize(), self::$nodes);
    }

    /** @dataProvider clients */
    public function testGetOrComputeAndTagInvalidationAcrossShards(string $client): void
    {
        $cache = new Cache($this->cluster($client), ['prefix' => 'fleet:']);
        for ($i = 0; $i < 30; $i++) {
            $this->assertSame("chart-$i", $cache->getOrCompute("device:$i", fn() => "chart-$i", 60, ['fleet', "device:$i"]));
            $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
        }
        $this->assertSame('chart-7', $cache->getOrCompute('device:7', fn() => 'x', 60));
        $this->assertSame(['HIT'], $cache->lastTrace());
        $perNode = $this->entriesPerNode();
        $this->assertSame(30, array_sum($perNode));
        $this->assertCount(3, array_filter($perNode), 'the keys are spread over the 3 shards: ' . json_encode($perNode));
        $stats = $cache->stats();
        $this->assertSame(30, $stats['entries'], 'STATS sums the shards');
        $this->assertSame(1, $stats['hits']);
        $this->assertSame(1, $cache->invalidateTags(['device:3']));
        $this->assertSame(29, $cache->invalidateTags(['fleet']), 'one call invalidates on every shard');
        $this->assertSame([0, 0, 0], $this->entriesPerNode());
    }

    /** @dataProvider clients */
    public function testPsr16AcrossShards(string $client): void
    {
        $cache = new Cache($this->cluster($client), ['prefix' => 'p.']);
        $values = [];
        for ($i = 0; $i < 20; $i++) {
            $values["k$i"] = ['n' => $i];
        }
        $this->assertTrue($cache->setMultiple($values, 60, ['batch']));
        $this->assertSame($values, $cache->getMultiple(array_keys($values)));
        $this->assertTrue($cache->deleteMultiple(['k1', 'k2']));
        $this->assertFalse($cache->has('k1'));
        $this->assertTrue($cache->has('k3'));
        $other = new Cache($this->cluster($client), ['prefix' => 'q.']);
        $other->set('keep', 1);
        $this->assertTrue($cache->clear());
        $this->assertSame(1, array_sum($this->entriesPerNode()), 'clear removed this prefix on every shard, only it');
        $this->assertSame(1, $other->get('keep'));
    }

    /** @dataProvider clients */
    public function testSymfonyAdapterOnACluster(string $client): void
    {
        if (!interface_exists(\Symfony\Contracts\Cache\TagAwareCacheInterface::class)) {
            $this->markTestSkipped('symfony/cache-contracts is not installed');
        }
        $cache = new TagAwareAdapter($this->cluster($client), 'app', 300);
        for ($i = 0; $i < 10; $i++) {
            $cache->get("page$i", fn(ItemInterface $item) => $item->tag('pages') ? "html$i" : '');
        }
        $this->assertSame('html4', $cache->get('page4', fn() => 'x'));
        $this->assertTrue($cache->invalidateTags(['pages']));
        $this->assertSame([0, 0, 0], $this->entriesPerNode());
    }
}
