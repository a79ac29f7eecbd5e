<?php

declare(strict_types=1);

namespace RedisCache\Tests;

/**
 * A redis-server with the module, started for the test run on a free loopback port in a temp
 * dir (never 6379). REDIS_SERVER: the binary (redis-server); CACHE_MODULE: the module
 * (<repo>/target/release/librediscache.so).
 */
final class TestServer
{
    /** @var resource|null */
    private $process = null;
    private int $ownerPid;
    public int $port = 0;
    public string $dir;

    private static ?self $shared = null;

    /** The server shared by the whole run. */
    public static function shared(): self
    {
        if (self::$shared === null) {
            self::$shared = new self();
            self::$shared->start();
        }
        return self::$shared;
    }

    public static function module(): string
    {
        $module = getenv('CACHE_MODULE') ?: dirname(__DIR__, 3) . '/target/release/librediscache.so';
        if (!is_file($module)) {
            throw new \RuntimeException("no module at $module (cargo build --release, or set CACHE_MODULE)");
        }
        return $module;
    }

    /** @param list<string> $extraArgs more server arguments (a cluster node's) */
    public function __construct(private array $extraArgs = [])
    {
    }

    public function start(?int $port = null): void
    {
        $binary = getenv('REDIS_SERVER') ?: 'redis-server';
        $this->ownerPid = getmypid();
        $this->dir = sys_get_temp_dir() . '/rediscache-php-' . getmypid() . '-' . bin2hex(random_bytes(4));
        mkdir($this->dir, 0700, true);
        for ($attempt = 1; $attempt <= 3; $attempt++) {
            $this->port = $port ?? self::freePort();
            $cmd = array_merge([$binary, '--port', (string) $this->port, '--bind', '127.0.0.1', '--dir', $this->dir,
                '--save', '', '--appendonly', 'no'], $this->extraArgs, ['--loadmodule', self::module()]);
            $log = fopen($this->dir . '/server.log', 'a');
            $this->process = proc_open($cmd, [0 => ['file', '/dev/null', 'r'], 1 => $log, 2 => $log], $pipes);
            if (!is_resource($this->process)) {
                throw new \RuntimeException("could not run $binary");
            }
            $deadline = microtime(true) + 10;
            while (microtime(true) < $deadline) {
                if (!proc_get_status($this->process)['running']) {
                    break;
                }
                $sock = @stream_socket_client("tcp://127.0.0.1:{$this->port}", $errno, $errstr, 0.2);
                if ($sock) {
                    fwrite($sock, "PING\r\n");
                    $pong = fread($sock, 7);
                    fclose($sock);
                    if ($pong === "+PONG\r\n") {
                        register_shutdown_function([$this, 'stop']);
                        return;
                    }
                }
                usleep(50_000);
            }
            $this->stop();
        }
        throw new \RuntimeException("could not start $binary with the module:\n" . @file_get_contents($this->dir . '/server.log'));
    }

    /** Stop the server; only the process that started it does (forked test children do not). */
    public function stop(): void
    {
        if ($this->process === null || getmypid() !== $this->ownerPid) {
            return;
        }
        $status = proc_get_status($this->process);
        if ($status['running']) {
            posix_kill($status['pid'], SIGTERM);
            for ($i = 0; $i < 50 && proc_get_status($this->process)['running']; $i++) {
                usleep(100_000);
            }
            if (proc_get_status($this->process)['running']) {
                posix_kill($status['pid'], SIGKILL);
            }
        }
        proc_close($this->process);
        $this->process = null;
        foreach (glob($this->dir . '/*') ?: [] as $f) {
            @unlink($f);
        }
        @rmdir($this->dir);
    }

    public function phpredis(int $db = 0): \Redis
    {
        $r = new \Redis();
        $r->connect('127.0.0.1', $this->port, 5.0);
        $r->setOption(\Redis::OPT_READ_TIMEOUT, 10);
        if ($db) {
            $r->select($db);
        }
        return $r;
    }

    public function predis(int $db = 0): \Predis\Client
    {
        return new \Predis\Client(['host' => '127.0.0.1', 'port' => $this->port, 'database' => $db,
            'read_write_timeout' => 10]);
    }

    public static function freePort(): int
    {
        while (true) {
            $server = stream_socket_server('tcp://127.0.0.1:0', $errno, $errstr);
            $name = stream_socket_get_name($server, false);
            fclose($server);
            $port = (int) substr($name, strrpos($name, ':') + 1);
            if ($port !== 6379) {
                return $port;
            }
        }
    }
}
