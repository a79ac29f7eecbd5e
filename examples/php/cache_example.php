<?php
// get-or-compute with the rediscache module, from PHP (phpredis, Debian's php-redis).
//
// Copy `Cache` into your application. The rest of this file is a scripted
// scenario that checks every reply the module can give, so it doubles as an
// integration test:
//
//   apt-get install php-cli php-redis
//   REDIS_PORT=6379 php cache_example.php            # RESP2
//   REDIS_PORT=6379 RESP=3 php cache_example.php     # RESP3 (or --resp3): see below
//
// Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_DB (15), RESP (2).
// WARNING: the scenario empties database REDIS_DB (FLUSHDB). Use a scratch server.
// Exit status 0 when every check passed, 1 on a failure, 77 (skipped) when RESP3
// was asked for and this phpredis cannot parse RESP3.
//
// Two phpredis details matter for the CACHE.* commands:
// - rawCommand() turns a status reply (+OK) into `true` unless
//   Redis::OPT_REPLY_LITERAL is set. GETORMARK's state is a bulk string, so it
//   reads as "HIT"/"STALE"/... in phpredis's default mode; only OK is `true`.
// - a nil reply comes back as `false`; an error also returns `false` (no
//   exception), with the text in getLastError(). `Cache::cmd()` tells them apart.
// - phpredis (5.3.x in Debian 12, and 6.x) has no RESP3 parser: after
//   HELLO 3 it fails with "protocol error, got '%' as reply-type byte".
//   Stay on RESP2 with phpredis; the module's replies are the same there.

final class Cache
{
    /** @var string[] what the last getOrCompute() did, for the demo's checks */
    public array $trace = [];

    public function __construct(private Redis $redis)
    {
    }

    /** rawCommand, but an error reply throws; nil is returned as null. */
    public function cmd(string ...$args): mixed
    {
        $this->redis->clearLastError();
        $reply = $this->redis->rawCommand(...$args);
        if ($reply === false && $this->redis->getLastError() !== null) {
            throw new RedisException($this->redis->getLastError());
        }
        return $reply === false ? null : $reply;
    }

    /**
     * The cached value of $key, computing it with $compute() if needed.
     * $ttl: fresh lifetime (s); $stale: how long after that a stale value may still be
     * served (s); $waitMs: how long to block while another client computes (keep it
     * under the connection's read timeout); $retries: more tries after a PENDING.
     */
    public function getOrCompute(string $key, int $ttl, array $tags, callable $compute,
                                 int $stale = 0, int $waitMs = 2000, int $leaseMs = 0, int $retries = 3): string
    {
        $this->trace = [];
        $args = ['CACHE.GETORMARK', $key];
        if ($leaseMs) array_push($args, 'LEASE', (string)$leaseMs);
        if ($waitMs) array_push($args, 'WAIT', (string)$waitMs);
        $backoffMs = 50;
        for ($attempt = 0; $attempt <= $retries; $attempt++) {
            [$state, $value, $token] = array_map(fn($x) => $x === false ? null : $x, $this->cmd(...$args));
            $this->trace[] = $state;
            if ($state === 'HIT') {
                if ($token !== null) { // chosen to refresh early: serve, then refresh
                    $this->trace[] = 'early-refresh';
                    $this->refreshLater(fn() => $this->store($key, $ttl, $tags, $compute, $stale, $token));
                }
                return $value;
            }
            if ($state === 'STALE') {
                if ($token !== null) { // we hold the lease: serve stale, refresh
                    $this->trace[] = 'refresh';
                    $this->refreshLater(fn() => $this->store($key, $ttl, $tags, $compute, $stale, $token));
                }
                return $value; // without a token another client is refreshing it
            }
            if ($state === 'MISS') {
                return $this->store($key, $ttl, $tags, $compute, $stale, $token);
            }
            // PENDING: another client is computing and WAIT ran out. Back off, ask again.
            usleep($backoffMs * 1000);
            $backoffMs = min($backoffMs * 2, 1000);
        }
        // Still nobody stored it: compute ourselves rather than fail, but don't cache.
        $this->trace[] = 'gave-up';
        return $compute();
    }

    /**
     * A refresh that should not delay the response. Run inline so the demo is
     * deterministic; under PHP-FPM you could run it after fastcgi_finish_request().
     */
    private function refreshLater(callable $refresh): void
    {
        $refresh();
    }

    private function store(string $key, int $ttl, array $tags, callable $compute, int $stale, string $token): string
    {
        $started = hrtime(true);
        $value = $compute();
        $costMs = max(1, intdiv(hrtime(true) - $started, 1000000));
        $cmd = ['CACHE.SETTAGGED', $key, $value, 'EX', (string)$ttl];
        if ($stale) array_push($cmd, 'STALE', (string)$stale);
        array_push($cmd, 'COST', (string)$costMs, 'LEASE', $token);
        if ($tags) array_push($cmd, 'TAGS', ...$tags);
        if ($this->cmd(...$cmd) === null) {
            // The lease was voided: the data changed (an invalidation) while we
            // computed. Our value may predate that change, so don't cache it;
            // still answer this request with it.
            $this->trace[] = 'not-stored';
        } else {
            $this->trace[] = 'stored';
        }
        return $value;
    }

    /** CACHE.STATS as an array: RESP2 replies with a flat field/value list. */
    public function stats(?string $namespace = null): array
    {
        $reply = $this->cmd('CACHE.STATS', ...($namespace !== null ? ['NAMESPACE', $namespace] : []));
        $stats = [];
        for ($i = 0; $i + 1 < count($reply); $i += 2) {
            $stats[$reply[$i]] = $reply[$i + 1];
        }
        return $stats;
    }
}

// --------------------------------------------------------------------------
// The scenario: a tiny shop whose "database" is an array, and its cache.
// --------------------------------------------------------------------------

$failures = [];
function check(string $what, mixed $got, mixed $expected): void
{
    global $failures;
    $ok = $got === $expected;
    echo '  ', $ok ? 'ok  ' : 'FAIL', " $what: ", json_encode($got),
        $ok ? '' : ' (expected ' . json_encode($expected) . ')', "\n";
    if (!$ok) $failures[] = $what;
}

$host = getenv('REDIS_HOST') ?: '127.0.0.1';
$port = (int)(getenv('REDIS_PORT') ?: 6379);
$db = (int)(getenv('REDIS_DB') ?: 15);
$resp = (getenv('RESP') === '3' || in_array('--resp3', $argv, true)) ? 3 : 2;

function connect(string $host, int $port, int $db): Redis
{
    $r = new Redis();
    $r->connect($host, $port, 5.0);
    $r->setOption(Redis::OPT_READ_TIMEOUT, 30); // longer than any WAIT we send
    $r->select($db);
    return $r;
}

$r = connect($host, $port, $db);
if ($resp === 3) {
    try {
        $hello = $r->rawCommand('HELLO', '3');
    } catch (RedisException $e) {
        echo 'php phpredis ', phpversion('redis'), ": RESP3 not supported by this client (" . trim($e->getMessage()) . "); ",
            "use RESP2 (the default) with phpredis\n";
        exit(77);
    }
}
$cache = new Cache($r);           // this application server
$other = new Cache(connect($host, $port, $db)); // another application server sharing the cache
echo 'php phpredis ', phpversion('redis'), ": $host:$port db $db, RESP$resp\n";
$cache->cmd('FLUSHDB');
$cache->cmd('CACHE.STATS', 'RESET');

$products = [1 => 'Lamp v1', 2 => 'Desk v1', 3 => 'Chair v1'];
$backendCalls = [];
$loadProduct = function (int $id) use (&$products, &$backendCalls): Closure {
    return function () use ($id, &$products, &$backendCalls): string {
        $backendCalls[] = $id;
        return $products[$id];
    };
};
$loadPage = function () use (&$products, &$backendCalls): string {
    $backendCalls[] = 'page';
    return implode(',', [$products[1], $products[2], $products[3]]);
};
// Write path: change the database, then drop what showed the old data.
$updateProduct = function (int $id, string $name) use (&$products, $cache): array {
    $products[$id] = $name;
    return [$cache->cmd('CACHE.INVALIDATETAG', "product:$id"), $cache->cmd('CACHE.INVALIDATETAG', 'products')];
};
$product = fn(int $id, ?callable $compute = null, int $stale = 30) =>
    $cache->getOrCompute("product:$id", 60, ["product:$id", 'products'], $compute ?? $loadProduct($id), $stale);

echo "1. first read computes (MISS), second is served from cache (HIT)\n";
$v = $product(1);
check('MISS value', $v, 'Lamp v1');
check('MISS trace', $cache->trace, ['MISS', 'stored']);
$v = $product(1);
check('HIT value', $v, 'Lamp v1');
check('HIT trace', $cache->trace, ['HIT']);
check('backend calls', $backendCalls, [1]);
$v = $cache->getOrCompute('products:page:1', 60, ['products'], $loadPage, 30);
check('list page', $v, 'Lamp v1,Desk v1,Chair v1');

echo "2. a write invalidates by tag: the product and the list page\n";
check('INVALIDATETAG product:1, products', $updateProduct(1, 'Lamp v2'), [1, 1]);
$v = $product(1);
check('re-read after write', [$v, $cache->trace], ['Lamp v2', ['MISS', 'stored']]);
$v = $cache->getOrCompute('products:page:1', 60, ['products'], $loadPage, 30);
check('list page after write', [$v, $cache->trace], ['Lamp v2,Desk v1,Chair v1', ['MISS', 'stored']]);

echo "3. soft invalidation after a batch import: serve STALE once, refresh behind it\n";
$products[2] = 'Desk v2';
check('INVALIDATETAG products SOFT', $cache->cmd('CACHE.INVALIDATETAG', 'products', 'SOFT'), 2);
$v = $cache->getOrCompute('products:page:1', 60, ['products'], $loadPage, 30);
check('stale page served', $v, 'Lamp v2,Desk v1,Chair v1');
check('STALE trace', $cache->trace, ['STALE', 'refresh', 'stored']);
$v = $cache->getOrCompute('products:page:1', 60, ['products'], $loadPage, 30);
check('refreshed page', [$v, $cache->trace], ['Lamp v2,Desk v2,Chair v1', ['HIT']]);

echo "4. STALE without a token: another server is refreshing, we just serve the stale value\n";
[$state, $value, $token] = $other->cmd('CACHE.GETORMARK', 'product:1');
check('other server takes the refresh lease', [$state, $value, is_string($token)], ['STALE', 'Lamp v2', true]);
$calls = count($backendCalls);
$v = $product(1);
check('stale served, no lease', [$v, $cache->trace], ['Lamp v2', ['STALE']]);
check('no backend call', count($backendCalls), $calls);
check('other server stores with its lease', $other->cmd('CACHE.SETTAGGED', 'product:1', 'Lamp v2',
    'EX', '60', 'STALE', '30', 'LEASE', $token, 'TAGS', 'product:1', 'products'), true);
$v = $product(1);
check('fresh again', [$v, $cache->trace], ['Lamp v2', ['HIT']]);

echo "5. a write during a computation voids the lease: the old value is not cached\n";
$slowLoadDesk = function () use ($loadProduct, &$products, $other): string {
    $old = $loadProduct(2)();
    $products[2] = 'Desk v3';                          // meanwhile, someone updates the desk ...
    $other->cmd('CACHE.INVALIDATETAG', 'product:2');   // ... and invalidates it
    return $old;
};
// leaseMs 300: keep a lease close to what the computation takes, so a client
// that dies holding it delays the others little. (This module also frees the
// key at once when it refuses a set; WAIT covers either way.)
$v = $cache->getOrCompute('product:2', 60, ['product:2', 'products'], $slowLoadDesk, leaseMs: 300);
check('computed value still returned', [$v, $cache->trace], ['Desk v2', ['MISS', 'not-stored']]);
$v = $cache->getOrCompute('product:2', 60, ['product:2', 'products'], $loadProduct(2), waitMs: 5000);
check('next read computes the new value', [$v, $cache->trace], ['Desk v3', ['MISS', 'stored']]);

echo "6. WAIT: many readers, one computation; the others block until it is stored\n";
[$state, , $token] = $other->cmd('CACHE.GETORMARK', 'report:sales:daily');
check('other server computes the report', [$state, is_string($token)], ['MISS', true]);
$pid = pcntl_fork(); // the other server finishes its report in 300 ms, in a child process
if ($pid === 0) {
    $child = new Cache(connect($host, $port, $db));
    usleep(300000);
    $ok = $child->cmd('CACHE.SETTAGGED', 'report:sales:daily', 'report-42', 'EX', '20', 'COST', '300',
        'LEASE', $token, 'TAGS', 'reports');
    exit($ok === true ? 0 : 1);
}
$started = microtime(true);
$never = function () { global $failures; $failures[] = 'computed a report someone else was computing'; return 'wrong'; };
$v = $cache->getOrCompute('report:sales:daily', 20, ['reports'], $never, waitMs: 5000);
$waited = microtime(true) - $started;
pcntl_waitpid($pid, $status);
check('the other server stored it', pcntl_wexitstatus($status), 0);
check('woken by the set', [$v, $cache->trace], ['report-42', ['HIT']]);
check('blocked until then (0.2s..3s)', $waited >= 0.2 && $waited < 3, true);

echo "7. WAIT: the computing server dies; its lease lapses and a waiter takes over\n";
[$state, , $deadToken] = $other->cmd('CACHE.GETORMARK', 'report:sales:weekly', 'LEASE', '300');
check('other server takes a 300 ms lease', $state, 'MISS');
$started = microtime(true);
$v = $cache->getOrCompute('report:sales:weekly', 20, ['reports'], fn() => 'weekly-7', waitMs: 5000);
$waited = microtime(true) - $started;
check('handed the lease, computed', [$v, $cache->trace], ['weekly-7', ['MISS', 'stored']]);
check('after the lapse (0.2s..3s)', $waited >= 0.2 && $waited < 3, true);
check("the late server's set is refused", $other->cmd('CACHE.SETTAGGED', 'report:sales:weekly', 'stale',
    'EX', '20', 'LEASE', $deadToken), null);

echo "8. PENDING: bounded retries with backoff, then compute without caching\n";
[$state] = $other->cmd('CACHE.GETORMARK', 'report:sales:monthly', 'LEASE', '10000');
check('other server holds a 10 s lease', $state, 'MISS');
$v = $cache->getOrCompute('report:sales:monthly', 20, ['reports'], fn() => 'monthly-1', waitMs: 100, retries: 2);
check('gave up after 3 PENDING', [$v, $cache->trace], ['monthly-1', ['PENDING', 'PENDING', 'PENDING', 'gave-up']]);

echo "9. early refresh: a HIT with a token means 'serve this, and refresh it now'\n";
// An entry that took long to compute (COST) and expires soon is refreshed
// early by one reader (XFetch), so it never goes cold. Seeded by hand here.
$products[3] = 'Chair v2';
for ($i = 0; $i < 5; $i++) { // the choice is random, but near-certain with these numbers
    $cache->cmd('CACHE.SETTAGGED', 'product:3', 'Chair v1', 'PX', '2000', 'STALE', '10',
        'COST', '600000', 'TAGS', 'product:3', 'products');
    $v = $product(3, null, 0);
    if ($cache->trace !== ['HIT']) break;
}
check('served the current value', $v, 'Chair v1');
check('early refresh trace', $cache->trace, ['HIT', 'early-refresh', 'stored']);
$v = $product(3, null, 0);
check('refreshed value', [$v, $cache->trace], ['Chair v2', ['HIT']]);

echo "10. CACHE.STATS: the server counts what it answered\n";
$cache->cmd('FLUSHDB');
$cache->cmd('CACHE.STATS', 'RESET');
for ($i = 0; $i < 3; $i++) { // MISS, HIT, HIT
    $cache->getOrCompute('stats:demo', 60, ['stats', 'demo'], fn() => 'x', 30);
}
check('CACHE.GET of a missing key', $cache->cmd('CACHE.GET', 'stats:none'), null);
check('soft invalidation', $cache->cmd('CACHE.INVALIDATETAG', 'demo', 'SOFT'), 1);
$cache->getOrCompute('stats:demo', 60, ['stats', 'demo'], fn() => 'y', 30); // STALE + refresh
$stats = $cache->stats();
echo "  CACHE.STATS (RESP$resp): ", json_encode($stats), "\n";
$expected = ['hits' => 2, 'stale_hits' => 1, 'misses' => 2, 'pending' => 0, 'sets' => 2, 'sets_refused' => 0,
    'leases_granted' => 2, 'invalidations' => 1, 'invalidated' => 1, 'entries' => 1, 'tags' => 2];
check('counters', array_map(fn($f) => $stats[$f] ?? null, array_combine(array_keys($expected), array_keys($expected))), $expected);
check('hit_ratio (3 of 5 lookups)', round((float)($stats['hit_ratio'] ?? -1), 6), 0.6);
check('per namespace', $cache->stats('stats')['hits'] ?? null, 2);

if ($failures) {
    echo "php RESP$resp: ", count($failures), ' check(s) failed: ', implode(', ', $failures), "\n";
    exit(1);
}
echo "php RESP$resp: all checks passed\n";
exit(0);
