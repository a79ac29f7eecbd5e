<?php

declare(strict_types=1);

namespace RedisCache\Tests;

final class SymfonyPredisTest extends SymfonyAdapterTestCase
{
    protected static function clientName(): string
    {
        return 'predis';
    }
}
