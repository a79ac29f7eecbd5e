<?php

declare(strict_types=1);

require dirname(__DIR__) . '/autoload.php';
require_once __DIR__ . '/TestServer.php';
require_once __DIR__ . '/ClientFactory.php';
// cache/integration-tests (Debian: php-cache-integration-tests): PSR-16's compliance suite.
foreach (['/usr/share/php/Cache/IntegrationTests/autoload.php', 'Cache/IntegrationTests/autoload.php'] as $f) {
    if (($path = stream_resolve_include_path($f)) !== false || is_file($path = $f)) {
        require_once $path;
        break;
    }
}
require_once __DIR__ . '/Psr16IntegrationTestCase.php';
require_once __DIR__ . '/CacheTestCase.php';
require_once __DIR__ . '/SymfonyAdapterTestCase.php';
