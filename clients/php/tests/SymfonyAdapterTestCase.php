<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use PHPUnit\Framework\TestCase;
use Psr\Cache\InvalidArgumentException as Psr6InvalidArgument;
use RedisCache\Symfony\TagAwareAdapter;
use Symfony\Contracts\Cache\ItemInterface;
use Symfony\Contracts\Cache\TagAwareCacheInterface;

/**
 * RedisCache\Symfony\TagAwareAdapter against Symfony's TagAwareCacheInterface contract (the
 * behaviour Symfony's own adapters have), once per client.
 */
abstract class SymfonyAdapterTestCase extends TestCase
{
    use ClientFactory;

    protected \Redis $r;
    protected array $events = [];

    protected function setUp(): void
    {
        if (!interface_exists(TagAwareCacheInterface::class)) {
            $this->markTestSkipped('symfony/cache-contracts is not installed (Debian: php-symfony-cache)');
        }
        $this->r = $this->raw();
        $this->r->flushAll();
        $this->r->rawCommand('CACHE.STATS', 'RESET');
        $this->events = [];
    }

    protected function adapter(string $namespace = 'app', int $defaultLifetime = 0, array $options = []): TagAwareAdapter
    {
        $options += ['on_event' => function (string $event, array $context): void {
            $this->events[] = [$event, $context];
        }];
        return new TagAwareAdapter($this->client(), $namespace, $defaultLifetime, $options);
    }

    public function testItIsATagAwareCache(): void
    {
        $this->assertInstanceOf(TagAwareCacheInterface::class, $this->adapter());
    }

    public function testGetComputesOnceWithItemTagsAndExpiry(): void
    {
        $cache = $this->adapter();
        $calls = 0;
        $callback = function (ItemInterface $item) use (&$calls) {
            $calls++;
            $this->assertSame('page.home', $item->getKey());
            $this->assertFalse($item->isHit());
            $item->expiresAfter(300);
            $item->tag(['pages', 'home'])->tag('home');
            return ['html' => '<h1>home</h1>'];
        };
        $this->assertSame(['html' => '<h1>home</h1>'], $cache->get('page.home', $callback, null, $meta));
        $this->assertSame(['html' => '<h1>home</h1>'], $cache->get('page.home', $callback, null, $meta2));
        $this->assertSame(1, $calls);
        $this->assertSame(['HIT'], $cache->lastTrace());
        $this->assertSame(['app:pages', 'app:home'], $this->r->rawCommand('CACHE.TAGS', 'app:page.home'));
        $this->assertEqualsWithDelta(300_000, $this->r->pttl('app:page.home'), 2_000);
        $this->assertSame(['pages' => 'pages', 'home' => 'home'], $meta[ItemInterface::METADATA_TAGS]);
        $this->assertEqualsWithDelta(microtime(true) + 300, $meta[ItemInterface::METADATA_EXPIRY], 5);
        $this->assertIsInt($meta[ItemInterface::METADATA_CTIME]);
        $this->assertSame($meta, $meta2, 'a hit reports the metadata stored with the value');
    }

    public function testInvalidateTagsDropsTaggedItemsOnly(): void
    {
        $cache = $this->adapter();
        $cache->get('a', fn(ItemInterface $i) => $i->tag('t1') ? 'a1' : '');
        $cache->get('b', fn(ItemInterface $i) => $i->tag(['t2']) ? 'b1' : '');
        $this->assertTrue($cache->invalidateTags(['t1']));
        $this->assertSame('a2', $cache->get('a', fn() => 'a2'));
        $this->assertSame('b1', $cache->get('b', fn() => 'b2'));
        $this->assertTrue($cache->invalidateTags([]));
    }

    public function testNamespacesKeepTheirTagsApart(): void
    {
        $one = $this->adapter('one');
        $two = $this->adapter('two');
        $one->get('k', fn(ItemInterface $i) => $i->tag('shared') ? 1 : 0);
        $two->get('k', fn(ItemInterface $i) => $i->tag('shared') ? 2 : 0);
        $one->invalidateTags(['shared']);
        $this->assertSame(10, $one->get('k', fn() => 10));
        $this->assertSame(2, $two->get('k', fn() => 20));
        $this->assertTrue($one->clear());
        $this->assertSame(0, $this->r->exists('one:k'));
        $this->assertSame(1, $this->r->exists('two:k'));
    }

    public function testDefaultLifetimeAndExpiresAt(): void
    {
        $cache = $this->adapter('app', 120);
        $cache->get('d', fn() => 'x');
        $this->assertEqualsWithDelta(120_000, $this->r->pttl('app:d'), 2_000);
        $cache->get('at', function (ItemInterface $item) {
            $item->expiresAt(new \DateTimeImmutable('+45 seconds'));
            return 'x';
        });
        $this->assertEqualsWithDelta(45_000, $this->r->pttl('app:at'), 2_000);
        $cache->get('iv', function (ItemInterface $item) {
            $item->expiresAfter(new \DateInterval('PT10M'));
            return 'x';
        });
        $this->assertEqualsWithDelta(600_000, $this->r->pttl('app:iv'), 2_000);
        $v = $cache->get('past', function (ItemInterface $item) {
            $item->expiresAt(new \DateTimeImmutable('-1 minute'));
            return 'gone';
        });
        $this->assertSame('gone', $v);
        $this->assertSame(0, $this->r->exists('app:past'));
        $noLifetime = $this->adapter('nl');
        $noLifetime->get('k', fn() => 'x');
        $this->assertSame(-1, $this->r->pttl('nl:k'));
    }

    public function testSaveFalseDoesNotStore(): void
    {
        $cache = $this->adapter();
        $v = $cache->get('k', function (ItemInterface $item, bool &$save) {
            $save = false;
            return 'transient';
        });
        $this->assertSame('transient', $v);
        $this->assertSame(0, $this->r->exists('app:k'));
        $this->assertSame(['MISS', 'not-saved', 'released'], $cache->lastTrace());
        $this->assertSame('next', $cache->get('k', fn() => 'next'));
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace(), 'the lease was given back, no wait');
    }

    public function testBetaInfForcesRecomputationAndZeroDeclinesEarlyRefresh(): void
    {
        $cache = $this->adapter();
        $cache->get('k', fn() => 'v1');
        $this->assertSame('v2', $cache->get('k', fn() => 'v2', INF));
        $this->assertSame('v2', $cache->get('k', fn() => 'v3'));
        // An entry about to expire whose computation is costly: the module picks this caller
        // for early refresh; beta 0 declines it, the default honours it.
        $seed = fn() => $this->r->rawCommand('CACHE.SETTAGGED', 'app:hot', serialize(['v' => 'old', 'm' => []]),
            'PX', '2000', 'COST', '600000');
        $seed();
        $this->assertSame('old', $cache->get('hot', fn() => $this->fail('declined'), 0.0));
        $this->assertSame(['HIT'], $cache->lastTrace());
        $trace = [];
        for ($i = 0; $i < 5 && $trace !== ['HIT', 'early-refresh', 'stored']; $i++) {
            $seed();
            $v = $cache->get('hot', function (ItemInterface $item) {
                $this->assertTrue($item->isHit(), 'an early refresh sees the current value');
                $this->assertSame('old', $item->get());
                return 'new';
            });
            $trace = $cache->lastTrace();
        }
        $this->assertSame(['HIT', 'early-refresh', 'stored'], $trace);
        $this->assertSame('new', $v);
    }

    public function testNegativeBetaIsRefused(): void
    {
        $this->expectException(Psr6InvalidArgument::class);
        $this->expectExceptionMessage('must be a positive number');
        $this->adapter()->get('k', fn() => 1, -1.0);
    }

    /** @dataProvider reservedKeys */
    public function testReservedCharactersInKeysAreRefused(string $key): void
    {
        $this->expectException(Psr6InvalidArgument::class);
        $this->adapter()->get($key, fn() => 1);
    }

    public static function reservedKeys(): array
    {
        return [[''], ['a:b'], ['a{b'], ['a}b'], ['a(b'], ['a)b'], ['a/b'], ['a\\b'], ['a@b']];
    }

    public function testReservedCharactersInTagsAreRefused(): void
    {
        $cache = $this->adapter();
        try {
            $cache->get('k', fn(ItemInterface $i) => $i->tag('user:42'));
            $this->fail('tag accepted');
        } catch (Psr6InvalidArgument $e) {
            $this->assertStringContainsString('reserved characters', $e->getMessage());
        }
        $this->expectException(Psr6InvalidArgument::class);
        $cache->invalidateTags(['']);
    }

    public function testDelete(): void
    {
        $cache = $this->adapter();
        $cache->get('k', fn() => 'v1');
        $this->assertTrue($cache->delete('k'));
        $this->assertTrue($cache->delete('never-set'));
        $this->assertSame('v2', $cache->get('k', fn() => 'v2'));
    }

    public function testSoftInvalidationAndFailSafe(): void
    {
        $cache = $this->adapter('app', 0, ['stale' => 300, 'lease_ms' => 300]);
        $cache->get('report', fn(ItemInterface $i) => $i->tag('reports') ? 'good' : '');
        $this->assertTrue($cache->invalidateTags(['reports'], true));
        $v = $cache->get('report', function (ItemInterface $item) {
            $this->assertTrue($item->isHit());
            $this->assertSame('good', $item->get());
            throw new \RuntimeException('backend down');
        });
        $this->assertSame('good', $v, 'the stale value is served when the refresh throws');
        $this->assertSame(['STALE', 'refresh', 'served-stale'], $cache->lastTrace());
        $this->assertSame('stale_served', $this->events[0][0]);
        // The failed refresher's lease keeps the others on the stale value (no retry storm on
        // a failing backend) until it lapses; then one caller refreshes again.
        $this->assertSame('good', $cache->get('report', fn() => $this->fail('lease still held')));
        $this->assertSame(['STALE'], $cache->lastTrace());
        usleep(400_000);
        $this->assertSame('fresh', $cache->get('report', fn(ItemInterface $i) => $i->tag('reports') ? 'fresh' : ''));
        $this->assertSame(['STALE', 'refresh', 'stored'], $cache->lastTrace());
        $this->expectException(\LogicException::class);
        $cache->get('other', fn() => throw new \LogicException('no stale value: the caller sees it'));
    }

    public function testAnInvalidationDuringTheCallbackKeepsTheOldValueOut(): void
    {
        $cache = $this->adapter();
        $writer = $this->raw();
        $v = $cache->get('p', function (ItemInterface $item) use ($writer) {
            $item->tag('product-1');
            $writer->rawCommand('CACHE.INVALIDATETAG', 'app:product-1');
            return 'read before the write';
        });
        $this->assertSame('read before the write', $v);
        $this->assertSame(['MISS', 'not-stored'], $cache->lastTrace());
        $this->assertSame(0, $this->r->exists('app:p'));
    }

    public function testStatsPerNamespace(): void
    {
        $cache = $this->adapter('stats');
        $cache->get('a', fn() => 1);
        $cache->get('a', fn() => 2);
        $stats = $cache->stats();
        $this->assertSame(1, $stats['hits']);
        $this->assertSame(1, $stats['misses']);
        $this->assertSame(1, $stats['entries']);
    }

    public function testPoolSavesTaggedItemsThatGetReadsAndTagsInvalidate(): void
    {
        $pool = new \RedisCache\Symfony\TagAwarePool($this->client(), 'app', 0);
        $this->assertInstanceOf(\Symfony\Component\Cache\Adapter\TagAwareAdapterInterface::class, $pool);
        $this->assertInstanceOf(TagAwareCacheInterface::class, $pool);
        $item = $pool->getItem('stats.weekly');
        $this->assertFalse($item->isHit());
        $this->assertTrue($pool->save($item->set(['n' => 7])->tag(['stats'])->expiresAfter(600)));
        $this->assertSame(['app:stats'], $this->r->rawCommand('CACHE.TAGS', 'app:stats.weekly'));
        $this->assertEqualsWithDelta(600_000, $this->r->pttl('app:stats.weekly'), 2_000);
        $this->assertSame(['n' => 7], $pool->get('stats.weekly', fn() => $this->fail('saved by the pool')));
        $this->assertSame(['n' => 7], $this->adapter()->get('stats.weekly', fn() => $this->fail('same entries')));
        $pool->get('other', fn(ItemInterface $i) => $i->tag('stats') ? 'o' : '');
        $this->assertTrue($pool->getItem('other')->isHit());
        $this->assertSame(['stats' => 'stats'], $pool->getItem('other')->getMetadata()[ItemInterface::METADATA_TAGS]);
        $this->assertTrue($pool->invalidateTags(['stats']));
        $this->assertFalse($pool->getItem('stats.weekly')->isHit());
        $this->assertFalse($pool->hasItem('other'));
        $pool->saveDeferred($pool->getItem('d')->set('deferred')->tag('later'));
        $this->assertSame(0, $this->r->exists('app:d'));
        $this->assertTrue($pool->commit());
        $this->assertSame(['app:later'], $this->r->rawCommand('CACHE.TAGS', 'app:d'));
    }
}
