<?php
// The PHP side of the device-charts flow: GET /chart?device=..&date=.. served from the module's
// cache first, then the job's fallback file, then the database, computed by one request at a
// time (the others wait for it), stale-while-revalidate after a soft invalidation, and still
// answering when Redis is down.
//
//   REDIS_PORT=6380 DATA_DIR=/tmp/charts CSV=readings.csv php api.php 6361819 2025-01-15
//
// Before (hand-written, as in the write-up): GET key; on a miss read the file or query the
// database, then SETEX key 60. After: one getOrCompute() call on the package.

declare(strict_types=1);

require __DIR__ . '/../../../clients/php/autoload.php';

use RedisCache\Cache;

/** The chart cache: JSON values (the Python job writes JSON), module keys with ':'. */
function chartCache(Redis $redis, ?callable $onEvent = null): Cache
{
    return new Cache($redis, [
        'serializer' => 'json',
        'stale' => 300,
        'wait_ms' => 3000,    // wait this long for another request's computation
        'lease_ms' => 5000,   // a little longer than the slowest database query
        'on_event' => $onEvent ?? static function (string $event, array $context): void {
            // a PSR-3 logger would go here; error_log is enough for the example
            error_log("chart cache: $event" . (isset($context['exception']) ? ': ' . $context['exception']->getMessage() : ''));
        },
    ]);
}

/**
 * @param callable(string, string): ?array $queryDatabase the slow legacy query
 * @return array{source: string, chart: ?array}
 */
function chartResponse(Cache $cache, string $device, string $date, string $dataDir, callable $queryDatabase): array
{
    $source = 'cache';
    $chart = $cache->getOrCompute(
        "processed_data:$device:$date",
        function () use ($device, $date, $dataDir, $queryDatabase, &$source): ?array {
            $data = @json_decode((string) @file_get_contents("$dataDir/data.json"), true);
            if (isset($data[$device][$date])) {
                $source = 'file';
                return $data[$device][$date];
            }
            $source = 'database';
            return $queryDatabase($device, $date);
        },
        60,
        ["device:$device", "date:$date"],
    );
    return ['source' => $source, 'chart' => $chart];
}

/** The legacy "database": the readings CSV, aggregated slowly. */
function csvDatabase(string $csv, int $delayMs = 100): callable
{
    return static function (string $device, string $date) use ($csv, $delayMs): ?array {
        usleep($delayMs * 1000);
        $points = [];
        $f = fopen($csv, 'r');
        fgetcsv($f);
        while (($row = fgetcsv($f)) !== false) {
            [$id, $ts, $value] = $row;
            [$day, $time] = explode('T', $ts);
            if ($id === $device && $day === $date) {
                $points[substr($time, 0, 5)] = (float) $value;
            }
        }
        fclose($f);
        if ($points === []) {
            return null;
        }
        ksort($points);
        return ['device' => $device, 'date' => $date, 'labels' => array_keys($points), 'values' => array_values($points)];
    };
}

if (PHP_SAPI === 'cli' && realpath($argv[0] ?? '') === __FILE__) {
    if ($argc !== 3) {
        fwrite(STDERR, "usage: php api.php DEVICE DATE\n");
        exit(2);
    }
    $redis = new Redis();
    try {
        $redis->connect(getenv('REDIS_HOST') ?: '127.0.0.1', (int) (getenv('REDIS_PORT') ?: 6379), 1.0);
        $redis->select((int) (getenv('REDIS_DB') ?: 0));
    } catch (RedisException $e) {
        error_log('redis down: ' . $e->getMessage()); // the cache computes without caching
    }
    $response = chartResponse(chartCache($redis), $argv[1], $argv[2], getenv('DATA_DIR') ?: __DIR__ . '/backend',
        csvDatabase(getenv('CSV') ?: __DIR__ . '/readings.csv'));
    echo json_encode($response, JSON_PRETTY_PRINT | JSON_PRESERVE_ZERO_FRACTION), "\n";
}
