<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use PHPUnit\Framework\TestCase;
use RedisCache\Cache;
use RedisCache\Exception\InvalidArgumentException;

/**
 * RedisCache\Cache beyond PSR-16's suite: get-or-compute with leases, stale-while-revalidate,
 * early refresh, bounded retries, tags, soft invalidation, stats, fail-safe, TTL and key rules.
 * Runs once per client (PhpRedisCacheTest, PredisCacheTest).
 */
abstract class CacheTestCase extends TestCase
{
    use ClientFactory;

    protected \Redis $r;
    /** @var list<array{0: string, 1: array}> */
    protected array $events = [];

    protected function setUp(): void
    {
        $this->r = $this->raw();
        $this->r->flushAll();
        $this->r->rawCommand('CACHE.STATS', 'RESET');
        $this->events = [];
    }

    protected function cache(array $options = []): Cache
    {
        $options += ['on_event' => function (string $event, array $context): void {
            $this->events[] = [$event, $context];
        }];
        return new Cache($this->client(), $options);
    }

    protected function eventNames(): array
    {
        return array_map(fn($e) => $e[0], $this->events);
    }

    public function testMissComputesOnceThenHits(): void
    {
        $cache = $this->cache();
        $calls = 0;
        $compute = function () use (&$calls) {
            $calls++;
            return ['device' => 6361819, 'points' => [1.5, 2.0, null]];
        };
        $v = $cache->getOrCompute('chart:6361819', $compute, 60, ['device:6361819']);
        $this->assertSame(['device' => 6361819, 'points' => [1.5, 2.0, null]], $v);
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
        $this->assertSame($v, $cache->getOrCompute('chart:6361819', $compute, 60, ['device:6361819']));
        $this->assertSame(['HIT'], $cache->lastTrace());
        $this->assertSame(1, $calls);
        $this->assertSame(['device:6361819'], $cache->tagsOf('chart:6361819'));
        $pttl = $this->r->pttl('chart:6361819');
        $this->assertGreaterThan(50_000, $pttl);
        $this->assertLessThanOrEqual(60_000, $pttl);
    }

    public function testGetOrComputeStoresFalseAndNullAsValues(): void
    {
        $cache = $this->cache();
        $this->assertFalse($cache->getOrCompute('f', fn() => false, 60));
        $this->assertFalse($cache->getOrCompute('f', fn() => 'other', 60));
        $this->assertSame(['HIT'], $cache->lastTrace());
        $this->assertNull($cache->getOrCompute('n', fn() => null, 60));
        $this->assertNull($cache->getOrCompute('n', fn() => 'other', 60));
        $this->assertSame(['HIT'], $cache->lastTrace());
    }

    public function testInvalidateTagsDropsEveryEntryCarryingThem(): void
    {
        $cache = $this->cache(['prefix' => 'shop:']);
        $cache->getOrCompute('product:1', fn() => 'Lamp v1', 60, ['product:1', 'products']);
        $cache->getOrCompute('page:1', fn() => 'Lamp v1,Desk', 60, ['products']);
        $cache->getOrCompute('product:2', fn() => 'Desk', 60, ['product:2', 'products']);
        $this->assertSame(1, $cache->invalidateTags(['product:1']));
        $this->assertSame(2, $cache->invalidateTags(['products', 'product:1']));
        $this->assertSame('Lamp v2', $cache->getOrCompute('product:1', fn() => 'Lamp v2', 60, ['product:1']));
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
        $this->assertSame(0, $this->r->exists('shop:page:1'));
    }

    public function testTagsWithGlobCharactersAreMatchedLiterally(): void
    {
        $cache = $this->cache();
        $cache->set('a', 1, 60, ['team*']);
        $cache->set('b', 2, 60, ['teams']);
        $this->assertSame(1, $cache->invalidateTags(['team*']));
        $this->assertSame(2, $cache->get('b'));
        $this->assertNull($cache->get('a'));
    }

    public function testInvalidateByPatternStaysInsideThePrefix(): void
    {
        $cache = $this->cache(['prefix' => 'a:']);
        $other = $this->cache(['prefix' => 'b:']);
        $cache->set('report.1', 1);
        $cache->set('report.2', 2);
        $cache->set('user.1', 3);
        $other->set('report.1', 4);
        $this->assertSame(2, $cache->invalidate('report.*'));
        $this->assertSame(3, $cache->get('user.1'));
        $this->assertSame(4, $other->get('report.1'));
        $this->assertSame(1, $cache->invalidate('user.?', true));
        $this->assertSame(3, $cache->get('user.1'), 'soft: still served (stale)');
    }

    public function testSoftInvalidationServesStaleWhileOneCallerRefreshes(): void
    {
        $cache = $this->cache();
        $cache->getOrCompute('page', fn() => 'v1', 60, ['pages'], stale: 30);
        $this->assertSame(1, $cache->invalidateTags(['pages'], soft: true));
        // Another server asks first: it gets the lease; we are served the stale value.
        [$state, $value, $token] = $this->raw()->rawCommand('CACHE.GETORMARK', 'page');
        $this->assertSame('STALE', $state);
        $this->assertIsString($token);
        $this->assertSame('v1', $cache->getOrCompute('page', fn() => $this->fail('not ours to refresh'), 60, ['pages']));
        $this->assertSame(['STALE'], $cache->lastTrace());
    }

    public function testStaleWithTheLeaseRefreshesInline(): void
    {
        $cache = $this->cache();
        $cache->getOrCompute('page', fn() => 'v1', 60, ['pages'], stale: 30);
        $cache->invalidateTags(['pages'], true);
        $this->assertSame('v2', $cache->getOrCompute('page', fn() => 'v2', 60, ['pages'], stale: 30));
        $this->assertSame(['STALE', 'refresh', 'stored'], $cache->lastTrace());
        $this->assertSame('v2', $cache->getOrCompute('page', fn() => 'v3', 60, ['pages']));
        $this->assertSame(['HIT'], $cache->lastTrace());
    }

    public function testDeferredRefreshServesStaleNowAndRefreshesLater(): void
    {
        $cache = $this->cache(['defer_refresh' => true]);
        $cache->getOrCompute('page', fn() => 'v1', 60, ['pages'], stale: 30);
        $cache->invalidateTags(['pages'], true);
        $calls = 0;
        $v = $cache->getOrCompute('page', function () use (&$calls) {
            $calls++;
            return 'v2';
        }, 60, ['pages'], stale: 30);
        $this->assertSame('v1', $v);
        $this->assertSame(['STALE', 'refresh', 'deferred'], $cache->lastTrace());
        $this->assertSame(0, $calls);
        $cache->runDeferredRefreshes();
        $this->assertSame(1, $calls);
        $this->assertSame('v2', $cache->getOrCompute('page', fn() => 'v3', 60));
        $this->assertSame(['HIT'], $cache->lastTrace());
    }

    public function testFailSafeServesStaleWhenTheComputationThrows(): void
    {
        $cache = $this->cache();
        $cache->getOrCompute('report', fn() => 'good', 60, ['reports'], stale: 300);
        $cache->invalidateTags(['reports'], true);
        $v = $cache->getOrCompute('report', fn() => throw new \RuntimeException('database down'), 60, ['reports']);
        $this->assertSame('good', $v);
        $this->assertSame(['STALE', 'refresh', 'served-stale'], $cache->lastTrace());
        $this->assertSame(['stale_served'], $this->eventNames());
        $this->assertSame('database down', $this->events[0][1]['exception']->getMessage());
        $this->assertSame('report', $this->events[0][1]['key']);
    }

    public function testComputationThatThrowsWithNothingStaleReachesTheCaller(): void
    {
        $cache = $this->cache();
        try {
            $cache->getOrCompute('report', fn() => throw new \DomainException('boom'), 60);
            $this->fail('no exception');
        } catch (\DomainException $e) {
            $this->assertSame('boom', $e->getMessage());
        }
        $this->assertSame(0, $this->r->exists('report'));
        // The lease was given back: the next caller computes at once instead of waiting.
        $this->assertSame('ok', $cache->getOrCompute('report', fn() => 'ok', 60, waitMs: 0, retries: 0));
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
    }

    public function testAResultNotToBeStoredGivesTheLeaseBack(): void
    {
        $cache = $this->cache();
        $this->assertSame('now', $cache->getOrCompute('k', fn() => 'now', 0));
        $this->assertSame(['MISS', 'not-saved', 'released'], $cache->lastTrace());
        $this->assertSame('again', $cache->getOrCompute('k', fn() => 'again', 60, waitMs: 0, retries: 0));
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
    }

    public function testEarlyRefreshIsHonoured(): void
    {
        $cache = $this->cache();
        $trace = [];
        for ($i = 0; $i < 5; $i++) { // the choice is random, but near-certain with these numbers
            $this->r->rawCommand('CACHE.SETTAGGED', 'hot', serialize('old'), 'PX', '2000', 'COST', '600000', 'TAGS', 't');
            $v = $cache->getOrCompute('hot', fn() => 'new', 60, ['t']);
            $trace = $cache->lastTrace();
            if ($trace !== ['HIT']) {
                break;
            }
        }
        $this->assertSame(['HIT', 'early-refresh', 'stored'], $trace);
        $this->assertSame('new', $v);
        $this->assertSame('new', $cache->get('hot'));
        $this->assertGreaterThan(50_000, $this->r->pttl('hot'));
    }

    public function testEarlyRefreshCanBeDeclined(): void
    {
        $cache = $this->cache();
        for ($i = 0; $i < 5; $i++) {
            $this->r->rawCommand('CACHE.SETTAGGED', 'hot', serialize('old'), 'PX', '2000', 'COST', '600000');
            $this->assertSame('old', $cache->getOrCompute('hot', fn() => $this->fail('declined'), 60, early: false));
            $this->assertSame(['HIT'], $cache->lastTrace());
        }
    }

    public function testASetRefusedForAVoidLeaseStillAnswersTheCaller(): void
    {
        $cache = $this->cache();
        $writer = $this->raw();
        $v = $cache->getOrCompute('product:1', function () use ($writer) {
            // While we read the database, a write invalidates the product.
            $writer->rawCommand('CACHE.INVALIDATETAG', 'product:1');
            return 'read before the write';
        }, 60, ['product:1']);
        $this->assertSame('read before the write', $v);
        $this->assertSame(['MISS', 'not-stored'], $cache->lastTrace());
        $this->assertSame(['lease_refused'], $this->eventNames());
        $this->assertSame(0, $this->r->exists('product:1'));
        $this->assertSame('after', $cache->getOrCompute('product:1', fn() => 'after', 60));
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
    }

    public function testPendingIsRetriedABoundedNumberOfTimesThenComputedWithoutCaching(): void
    {
        $cache = $this->cache();
        [$state] = $this->raw()->rawCommand('CACHE.GETORMARK', 'slow', 'LEASE', '10000');
        $this->assertSame('MISS', $state);
        $v = $cache->getOrCompute('slow', fn() => 'mine', 60, waitMs: 100, retries: 2);
        $this->assertSame('mine', $v);
        $this->assertSame(['PENDING', 'PENDING', 'PENDING', 'gave-up'], $cache->lastTrace());
        $this->assertSame(['gave_up'], $this->eventNames());
        $this->assertSame(0, $this->r->exists('slow'));
    }

    public function testAWaiterTakesOverWhenTheHoldersLeaseLapses(): void
    {
        $cache = $this->cache();
        [$state, , $deadToken] = $this->raw()->rawCommand('CACHE.GETORMARK', 'report', 'LEASE', '300');
        $this->assertSame('MISS', $state);
        $started = microtime(true);
        $this->assertSame('mine', $cache->getOrCompute('report', fn() => 'mine', 60, waitMs: 5000));
        $this->assertSame(['MISS', 'stored'], $cache->lastTrace());
        $this->assertGreaterThanOrEqual(0.25, microtime(true) - $started, 'blocked in WAIT until the lease lapsed');
        $this->assertFalse($this->r->rawCommand('CACHE.SETTAGGED', 'report', 'late', 'EX', '60', 'LEASE', $deadToken));
        $this->assertSame('mine', $cache->get('report'));
    }

    public function testDeleteVoidsAnOutstandingLease(): void
    {
        $cache = $this->cache();
        $cache->set('k', 'v1');
        $this->r->rawCommand('CACHE.INVALIDATETAG', 'none');
        [$state, , $token] = $this->r->rawCommand('CACHE.GETORMARK', 'k2');
        $this->assertSame('MISS', $state);
        $this->assertTrue($cache->delete('k2'));
        $this->assertFalse($this->r->rawCommand('CACHE.SETTAGGED', 'k2', 'old', 'EX', '60', 'LEASE', $token));
        $this->assertTrue($cache->delete('k'));
        $this->assertFalse($cache->has('k'));
    }

    public function testClearRemovesOnlyThisCachesEntries(): void
    {
        $cache = $this->cache(['prefix' => 'app[1]*:']);
        $other = $this->cache(['prefix' => 'app11:']);
        $cache->set('a', 1);
        $cache->getOrCompute('b:c', fn() => 2, 60);
        $other->set('a', 3);
        $this->r->set('app[1]*:plain', 'not an entry');
        $this->assertTrue($cache->clear());
        $this->assertNull($cache->get('a'));
        $this->assertSame(0, $this->r->exists('app[1]*:b:c'));
        $this->assertSame(3, $other->get('a'), 'glob characters in the prefix are escaped');
        $this->assertSame('not an entry', $this->r->get('app[1]*:plain'), 'never a non-entry key, never FLUSHDB');
    }

    public function testTtlRules(): void
    {
        $cache = $this->cache();
        $this->assertTrue($cache->set('i', 'v', 30));
        $this->assertEqualsWithDelta(30_000, $this->r->pttl('i'), 2_000);
        $this->assertTrue($cache->set('d', 'v', new \DateInterval('PT2M')));
        $this->assertEqualsWithDelta(120_000, $this->r->pttl('d'), 2_000);
        $this->assertTrue($cache->set('n', 'v', null));
        $this->assertSame(-1, $this->r->pttl('n'), 'null: the server default (cache.default-ttl 0: none)');
        $this->assertTrue($cache->set('i', 'v', 0));
        $this->assertFalse($cache->has('i'));
        $this->assertTrue($cache->set('d', 'v', -5));
        $this->assertFalse($cache->has('d'));
        $past = new \DateInterval('PT1H');
        $past->invert = 1;
        $this->assertTrue($cache->set('n', 'v', $past));
        $this->assertFalse($cache->has('n'));

        $withDefault = $this->cache(['default_ttl' => 90, 'stale' => 10]);
        $withDefault->set('x', 'v');
        $this->assertEqualsWithDelta(100_000, $this->r->pttl('x'), 2_000, 'default_ttl + stale window');
        $this->assertSame('c', $withDefault->getOrCompute('y', fn() => 'c'));
        $this->assertEqualsWithDelta(100_000, $this->r->pttl('y'), 2_000);
        $this->assertSame('c0', $withDefault->getOrCompute('z', fn() => 'c0', 0));
        $this->assertSame(0, $this->r->exists('z'), 'ttl 0: computed, not stored');
    }

    public function testInvalidTtlAndKeysThrowPsrInvalidArgument(): void
    {
        $cache = $this->cache();
        foreach (['60', 1.5, true, []] as $ttl) {
            try {
                $cache->set('k', 'v', $ttl);
                $this->fail('ttl ' . json_encode($ttl) . ' accepted');
            } catch (\Psr\SimpleCache\InvalidArgumentException $e) {
                $this->assertInstanceOf(InvalidArgumentException::class, $e);
            }
        }
        foreach (['a:b', 'a{b', 'a}b', 'a(b', 'a)b', 'a/b', 'a\\b', 'a@b', ''] as $key) {
            try {
                $cache->get($key);
                $this->fail("key $key accepted");
            } catch (\Psr\SimpleCache\InvalidArgumentException $e) {
                $this->assertStringContainsString($key === '' ? 'greater than zero' : 'reserved characters', $e->getMessage());
            }
        }
        // getOrCompute follows the module's keys: ':' is the namespace delimiter there.
        $this->assertSame('ok', $cache->getOrCompute('processed_data:6361819:2025-01-15', fn() => 'ok', 60));
        $this->expectException(\Psr\SimpleCache\InvalidArgumentException::class);
        $cache->getOrCompute('', fn() => 'x', 60);
    }

    public function testStrictKeysOffAcceptsModuleKeysInPsrMethods(): void
    {
        $cache = $this->cache(['strict_keys' => false]);
        $this->assertSame('ok', $cache->getOrCompute('processed_data:1:2025-01-15', fn() => 'ok', 60));
        $this->assertSame('ok', $cache->get('processed_data:1:2025-01-15'));
        $this->assertTrue($cache->set('a:{b}', 1));
        $this->assertSame(['a:{b}' => 1], $cache->getMultiple(['a:{b}']));
        $this->assertTrue($cache->delete('a:{b}'));
        $this->assertFalse($cache->has('a:{b}'));
        $this->expectException(\Psr\SimpleCache\InvalidArgumentException::class);
        $cache->get('');
    }

    public function testMultipleOperationsWithTagsAndGenerators(): void
    {
        $cache = $this->cache(['prefix' => 'm:']);
        $gen = (function () {
            yield 'a' => 1;
            yield 'b' => [2];
            yield '3' => 'three';
        })();
        $this->assertTrue($cache->setMultiple($gen, 60, ['batch']));
        $this->assertSame(['batch'], $cache->tagsOf('b'));
        $keys = (function () {
            yield 'a';
            yield 'b';
            yield '3';
            yield 'missing';
        })();
        $this->assertSame(['a' => 1, 'b' => [2], '3' => 'three', 'missing' => 'dflt'], $cache->getMultiple($keys, 'dflt'));
        $this->assertSame(3, $cache->invalidateTags(['batch']));
        $this->assertSame(['a' => null], $cache->getMultiple(['a']));
        $cache->setMultiple(['a' => 1, 'b' => 2]);
        $this->assertTrue($cache->deleteMultiple(['a', 'missing']));
        $this->assertSame(['a' => null, 'b' => 2], $cache->getMultiple(['a', 'b']));
    }

    public function testStatsAreTheServersCounters(): void
    {
        $cache = $this->cache();
        for ($i = 0; $i < 3; $i++) { // MISS, HIT, HIT
            $cache->getOrCompute('stats:demo', fn() => 'x', 60, ['stats', 'demo'], stale: 30);
        }
        $this->assertNull($cache->getMultiple(['none'])['none']);
        $this->assertSame(1, $cache->invalidateTags(['demo'], true));
        $cache->getOrCompute('stats:demo', fn() => 'y', 60, ['stats', 'demo'], stale: 30); // STALE + refresh
        $stats = $cache->stats();
        $expected = ['hits' => 2, 'stale_hits' => 1, 'misses' => 2, 'pending' => 0, 'sets' => 2, 'sets_refused' => 0,
            'leases_granted' => 2, 'invalidations' => 1, 'invalidated' => 1, 'entries' => 1, 'tags' => 2];
        foreach ($expected as $field => $value) {
            $this->assertSame($value, $stats[$field], $field);
        }
        $this->assertEqualsWithDelta(0.6, $stats['hit_ratio'], 0.0001);
        $this->assertSame(2, $cache->stats('stats')['hits']);
        $cache->resetStats();
        $this->assertSame(0, $cache->stats()['hits']);
        $this->assertSame(1, $cache->stats()['entries']);
    }

    public function testJsonSerializerReadsWhatAnotherLanguageWrote(): void
    {
        $this->r->rawCommand('CACHE.SETTAGGED', 'processed_data:1:2025-01-15', '{"labels":["00:00"],"values":[1.0,2.5]}',
            'EX', '60', 'TAGS', 'device:1');
        $cache = $this->cache(['serializer' => 'json']);
        $this->assertSame(['labels' => ['00:00'], 'values' => [1.0, 2.5]],
            $cache->getOrCompute('processed_data:1:2025-01-15', fn() => $this->fail('cached'), 60));
        $cache->getOrCompute('processed_data:2:2025-01-15', fn() => ['values' => [3.0]], 60, ['device:2']);
        $this->assertSame('{"values":[3.0]}', $this->r->rawCommand('CACHE.GET', 'processed_data:2:2025-01-15'));
    }

    public function testRawSerializerIsBinarySafe(): void
    {
        $cache = $this->cache(['serializer' => 'raw']);
        $bytes = implode('', array_map('chr', range(0, 255)));
        $this->assertTrue($cache->set('bin', $bytes));
        $this->assertSame($bytes, $cache->get('bin'));
        $this->assertSame($bytes, $this->r->rawCommand('CACHE.GET', 'bin'));
        $this->expectException(\Psr\SimpleCache\InvalidArgumentException::class);
        $cache->set('arr', ['not a string']);
    }

    public function testUndecodableEntryIsRecomputedAndReplaced(): void
    {
        $this->r->rawCommand('CACHE.SETTAGGED', 'foreign', 'not php serialized', 'EX', '60');
        $cache = $this->cache();
        $this->assertSame('dflt', $cache->get('foreign', 'dflt'));
        $this->assertSame('mine', $cache->getOrCompute('foreign', fn() => 'mine', 60));
        $this->assertSame(['HIT', 'undecodable', 'stored'], $cache->lastTrace());
        $this->assertSame('mine', $cache->get('foreign'));
        $this->assertContains('undecodable', $this->eventNames());
    }

    public function testAKeyHoldingANonEntryIsNotFatal(): void
    {
        $this->r->set('plain', 'x');
        $cache = $this->cache();
        $this->assertSame('computed', $cache->getOrCompute('plain', fn() => 'computed', 60));
        $this->assertSame(['error'], $cache->lastTrace());
        $this->assertSame('dflt', $cache->get('plain', 'dflt'));
        $this->assertFalse($cache->set('plain', 'y'));
        $this->assertSame('x', $this->r->get('plain'));
        $this->assertStringStartsWith('WRONGTYPE', $this->events[0][1]['exception']->getMessage());
    }

    public function testTooManyTagsIsReportedAndTheValueStillReturned(): void
    {
        $cache = $this->cache();
        $tags = array_map(fn($i) => "t$i", range(1, 65));
        $this->assertSame('v', $cache->getOrCompute('k', fn() => 'v', 60, $tags));
        $this->assertSame(['MISS', 'store-failed'], $cache->lastTrace());
        $this->assertSame(['error'], $this->eventNames());
    }

    public function testUnreachableServerComputesWithoutCaching(): void
    {
        $dead = new TestServer();
        $dead->start();
        $client = static::clientName() === 'predis' ? $dead->predis() : $dead->phpredis();
        $cache = new Cache($client, ['on_event' => function (string $event, array $context): void {
            $this->events[] = [$event, $context];
        }]);
        $this->assertSame('v', $cache->getOrCompute('k', fn() => 'v', 60)); // connects while it is up
        $dead->stop();
        $calls = 0;
        $compute = function () use (&$calls) {
            $calls++;
            return 'computed';
        };
        $this->assertSame('computed', $cache->getOrCompute('k', $compute, 60));
        $this->assertSame(['unreachable'], $cache->lastTrace());
        $this->assertSame('computed', $cache->getOrCompute('k', $compute, 60));
        $this->assertSame(2, $calls);
        $this->assertSame('dflt', $cache->get('k', 'dflt'));
        $this->assertFalse($cache->set('k', 'v'));
        $this->assertFalse($cache->has('k'));
        $this->assertFalse($cache->delete('k'));
        $this->assertFalse($cache->clear());
        $this->assertSame(['k' => 'd'], $cache->getMultiple(['k'], 'd'));
        $this->assertFalse($cache->setMultiple(['k' => 1]));
        $this->assertContains('unreachable', $this->eventNames());
        $this->assertInstanceOf(\RedisCache\Exception\ConnectionError::class, $this->events[0][1]['exception']);
    }

    public function testUnknownOptionIsRefused(): void
    {
        $this->expectException(\InvalidArgumentException::class);
        $this->expectExceptionMessage('Unknown option(s): ttl');
        new Cache($this->client(), ['ttl' => 5]);
    }
}
