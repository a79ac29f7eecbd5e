<?php

declare(strict_types=1);

namespace RedisCache\Tests;

/** A test runs once per client: phpredis in its default mode, and Predis. */
trait ClientFactory
{
    /** Which client this test class uses: 'phpredis' or 'predis'. */
    abstract protected static function clientName(): string;

    protected function client(int $db = 0): object
    {
        $server = TestServer::shared();
        if (static::clientName() === 'predis') {
            if (!class_exists(\Predis\Client::class)) {
                $this->markTestSkipped('Predis is not installed (Debian: php-nrk-predis)');
            }
            return $server->predis($db);
        }
        if (!class_exists(\Redis::class)) {
            $this->markTestSkipped('phpredis is not installed (Debian: php-redis)');
        }
        return $server->phpredis($db);
    }

    /** A plain phpredis connection for setting up and checking, whichever client is tested. */
    protected function raw(int $db = 0): \Redis
    {
        return TestServer::shared()->phpredis($db);
    }
}
