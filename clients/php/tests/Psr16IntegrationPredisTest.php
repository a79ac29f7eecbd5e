<?php

declare(strict_types=1);

namespace RedisCache\Tests;

final class Psr16IntegrationPredisTest extends Psr16IntegrationTestCase
{
    protected static function clientName(): string
    {
        return 'predis';
    }
}
