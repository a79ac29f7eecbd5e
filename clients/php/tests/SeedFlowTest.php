<?php

declare(strict_types=1);

namespace RedisCache\Tests;

use PHPUnit\Framework\TestCase;

/**
 * The seed flow of examples/php/device_charts: charts written by a Python job (redis-py,
 * CACHE.SETTAGGED, JSON) and read by a PHP API on RedisCache\Cache (phpredis). Runs
 * scenario.php against the test server; it prints ok/FAIL per check.
 */
final class SeedFlowTest extends TestCase
{
    private static function python(): string
    {
        if ($p = getenv('PYTHON')) {
            return $p;
        }
        $venv = dirname(__DIR__, 3) . '/.venv/bin/python3';
        return is_executable($venv) ? $venv : 'python3';
    }

    private function exec(string ...$cmd): array
    {
        $env = ['REDIS_HOST' => '127.0.0.1', 'REDIS_PORT' => (string) TestServer::shared()->port, 'REDIS_DB' => '9',
            'PYTHON' => self::python()] + getenv();
        $p = proc_open($cmd, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes, null, $env);
        $out = stream_get_contents($pipes[1]);
        $err = stream_get_contents($pipes[2]);
        return [proc_close($p), $out, $err];
    }

    protected function setUp(): void
    {
        [$rc] = $this->exec(self::python(), '-c', 'import redis');
        if ($rc !== 0) {
            $this->markTestSkipped(self::python() . ' has no redis-py (scripts/setup.sh puts it in .venv)');
        }
    }

    public function testDeviceChartsScenario(): void
    {
        [$rc, $out, $err] = $this->exec(PHP_BINARY, dirname(__DIR__, 3) . '/examples/php/device_charts/scenario.php');
        $this->assertStringNotContainsString('FAIL', $out, $out . $err);
        $this->assertStringContainsString('device charts: all checks passed', $out, $out . $err);
        $this->assertSame(0, $rc, $out . $err);
        $this->assertSame(0, substr_count($out, 'FAIL'));
        $this->assertGreaterThanOrEqual(24, substr_count($out, '  ok '), 'every check ran');
    }

    public function testApiCommandLine(): void
    {
        $dir = sys_get_temp_dir() . '/charts-cli-' . getmypid();
        $this->exec(self::python(), dirname(__DIR__, 3) . '/examples/php/device_charts/job.py',
            '--csv', dirname(__DIR__, 3) . '/examples/php/device_charts/readings.csv', '--data-dir', $dir);
        [$rc, $out] = $this->exec('env', "DATA_DIR=$dir", PHP_BINARY,
            dirname(__DIR__, 3) . '/examples/php/device_charts/api.php', '6361819', '2025-01-16');
        @unlink("$dir/data.json");
        @rmdir($dir);
        $this->assertSame(0, $rc);
        $res = json_decode($out, true);
        $this->assertSame('cache', $res['source']);
        $this->assertSame('6361819', $res['chart']['device']);
        $this->assertCount(8, $res['chart']['values']);
    }
}
