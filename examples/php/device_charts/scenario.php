<?php
// The device-charts flow end to end, as a check: the Python job (job.py, redis-py) writes the
// charts, the PHP API (api.php, RedisCache\Cache on phpredis) reads them.
//
//   REDIS_PORT=6380 php scenario.php        # WARNING: empties database REDIS_DB (default 9)
//
// Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_DB (9), PYTHON (python3).
// Exit 0 when every check passed, 1 otherwise. clients/php's test suite runs it (SeedFlowTest).

declare(strict_types=1);

require __DIR__ . '/api.php';

$failures = [];
function check(string $what, mixed $got, mixed $expected): void
{
    global $failures;
    $ok = $got === $expected;
    echo '  ', $ok ? 'ok  ' : 'FAIL', " $what: ", json_encode($got, JSON_PRESERVE_ZERO_FRACTION),
        $ok ? '' : ' (expected ' . json_encode($expected, JSON_PRESERVE_ZERO_FRACTION) . ')', "\n";
    if (!$ok) {
        $failures[] = $what;
    }
}

$host = getenv('REDIS_HOST') ?: '127.0.0.1';
$port = (int) (getenv('REDIS_PORT') ?: 6379);
$db = (int) (getenv('REDIS_DB') ?: 9);
$python = getenv('PYTHON') ?: 'python3';
$dataDir = sys_get_temp_dir() . '/device-charts-' . getmypid();
$csv = __DIR__ . '/readings.csv';

function job(string ...$args): array
{
    global $python, $host, $port, $db, $dataDir;
    $cmd = array_merge([$python, __DIR__ . '/job.py', '--data-dir', $dataDir], $args);
    $env = ['REDIS_HOST' => $host, 'REDIS_PORT' => (string) $port, 'REDIS_DB' => (string) $db] + getenv();
    $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
    $out = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
    $rc = proc_close($p);
    echo '  job.py ', implode(' ', $args), ': ', trim($out), "\n";
    return [$rc, trim($out)];
}

function connect(): Redis
{
    global $host, $port, $db;
    $r = new Redis();
    $r->connect($host, $port, 2.0);
    $r->select($db);
    return $r;
}

$r = connect();
$r->flushDB();
$r->rawCommand('CACHE.STATS', 'RESET');
$events = [];
$cache = chartCache(connect(), function (string $event) use (&$events): void {
    $events[] = $event;
});
$dbQueries = 0;
$database = function (string $device, string $date) use ($csv, &$dbQueries): ?array {
    $dbQueries++;
    return csvDatabase($csv, 50)($device, $date);
};
$api = fn(string $device, string $date) => chartResponse($cache, $device, $date, $dataDir, $database);

echo "1. the Python job processes the CSV and caches each chart (CACHE.SETTAGGED, JSON)\n";
[$rc, $out] = job('--csv', $csv, '--devices', '6361819,6361820');
check('job exit status', $rc, 0);
if ($rc !== 0) {
    echo "device charts: the Python job failed (PYTHON=$python needs redis-py: pip install redis)\n";
    exit(1);
}
$file = json_decode(file_get_contents("$dataDir/data.json"), true);

echo "2. the PHP API reads what Python wrote: from the cache, no file, no database\n";
$res = $api('6361819', '2025-01-15');
check('source', $res['source'], 'cache');
check('trace', $cache->lastTrace(), ['HIT']);
check('chart is the job\'s', $res['chart'], $file['6361819']['2025-01-15']);
check('8 points, floats kept', [count($res['chart']['values']), is_float($res['chart']['values'][0])], [8, true]);

echo "3. an entry gone from Redis: the file, computed once, cached for the next request\n";
$r->del('processed_data:6361820:2025-01-16');
$res = $api('6361820', '2025-01-16');
check('source', [$res['source'], $cache->lastTrace()], ['file', ['MISS', 'stored']]);
check('then cached', $api('6361820', '2025-01-16')['source'], 'cache');
check('tags carried', $r->rawCommand('CACHE.TAGS', 'processed_data:6361820:2025-01-16'), ['device:6361820', 'date:2025-01-16']);

echo "4. neither cache nor file: the database, once\n";
$res = $api('7000001', '2025-01-15');
check('source', $res['source'], 'database');
check('chart', $res['chart']['device'] ?? null, '7000001');
check('second request cached', $api('7000001', '2025-01-15')['source'], 'cache');
check('database queries', $dbQueries, 1);

echo "5. 100 simultaneous requests for a chart nobody has: 1 database query (the others wait)\n";
$r->del('queries');
$pids = [];
for ($i = 0; $i < 100; $i++) {
    $pid = pcntl_fork();
    if ($pid === 0) {
        $mine = chartCache(connect(), fn() => null);
        $rr = connect();
        $rr->blPop(['start'], 30);
        $res = chartResponse($mine, '7000001', '2025-01-16', $dataDir, function (string $d, string $day) use ($csv, $rr) {
            $rr->incr('queries');
            return csvDatabase($csv, 300)($d, $day);
        });
        $rr->rPush('answers', $res['chart']['device'] ?? 'none');
        posix_kill(posix_getpid(), SIGKILL); // no shutdown handlers in the children
    }
    $pids[] = $pid;
}
usleep(300_000);
$r->rPush('start', ...array_fill(0, 100, '1'));
foreach ($pids as $pid) {
    pcntl_waitpid($pid, $status);
}
check('database queries', (int) $r->get('queries'), 1);
check('answers', array_count_values($r->lRange('answers', 0, -1)), ['7000001' => 100]);

echo "6. reprocessing a device's history: one tag drops all its days; the job caches the new ones\n";
check('job exit status', job('--csv', __DIR__ . '/readings_corrected.csv', '--invalidate-device', '6361819')[0], 0);
$res = $api('6361819', '2025-01-15');
check('corrected chart served from the cache', [$res['source'], min($res['chart']['values']) >= 50], ['cache', true]);

echo "7. the 5-minute job marks a day stale: served at once, refreshed by one request\n";
check('job exit status', job('--soft-invalidate-date', '2025-01-15')[0], 0);
[$state, $stale] = $r->rawCommand('CACHE.GETORMARK', 'processed_data:6361820:2025-01-15', 'LEASE', '5000');
check('another API server refreshes it: we get STALE', $state, 'STALE');
$res = $api('6361820', '2025-01-15');
check('stale chart served without waiting', [$res['source'], $cache->lastTrace()], ['cache', ['STALE']]);
$res = $api('6361819', '2025-01-15');
check('this request holds the lease: refreshed from the file', [$res['source'], $cache->lastTrace()], ['file', ['STALE', 'refresh', 'stored']]);

echo "8. Redis down: the API still answers, from the file\n";
$down = new Redis();
try {
    $down->connect('127.0.0.1', 1, 0.5);
} catch (RedisException) {
}
$events = [];
$downCache = chartCache($down, function (string $event) use (&$events): void {
    $events[] = $event;
});
$res = chartResponse($downCache, '6361819', '2025-01-16', $dataDir, $database);
check('source', [$res['source'], $downCache->lastTrace()], ['file', ['unreachable']]);
check('told', $events, ['unreachable']);

echo "9. the server counted it all (CACHE.STATS NAMESPACE processed_data)\n";
$stats = $cache->stats('processed_data');
echo '  ', json_encode(array_intersect_key($stats, array_flip(['hits', 'stale_hits', 'misses', 'hit_ratio', 'sets', 'leases_granted']))), "\n";
check('sets by Python and PHP', $stats['sets'] >= 6, true);
check('hit ratio above one half', $stats['hit_ratio'] > 0.5, true);

@unlink("$dataDir/data.json");
@rmdir($dataDir);
if ($failures) {
    echo 'device charts: ', count($failures), ' check(s) failed: ', implode(', ', $failures), "\n";
    exit(1);
}
echo "device charts: all checks passed\n";
exit(0);
