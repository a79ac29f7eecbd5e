<?php
// RedisCache for PHP without Composer: `require '/path/to/clients/php/autoload.php';`
//
// Registers a PSR-4 autoloader for the RedisCache\ namespace (src/), then loads the autoloaders
// of the libraries it builds on from Debian's /usr/share/php (or the include_path) when present:
//   psr/simple-cache (php-psr-simple-cache)  required: RedisCache\Cache implements it
//   symfony/cache contracts (php-symfony-cache) optional: RedisCache\Symfony\TagAwareAdapter
//   predis (php-nrk-predis)                   optional: pass a Predis\Client instead of a Redis
// With Composer, point its autoloader at src/ (PSR-4 "RedisCache\\") instead of requiring this.

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'RedisCache\\', 11) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 11)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});

(static function (): void {
    $candidates = [
        'Psr\\SimpleCache\\CacheInterface' => 'Psr/SimpleCache/autoload.php',
        'Psr\\Cache\\CacheItemInterface' => 'Psr/Cache/autoload.php',
        'Symfony\\Contracts\\Cache\\TagAwareCacheInterface' => 'Symfony/Contracts/Cache/autoload.php',
        'Predis\\Client' => 'Predis/autoload.php',
    ];
    foreach ($candidates as $class => $file) {
        if (interface_exists($class, false) || class_exists($class, false)) {
            continue; // already provided (Composer, or the application's own loader)
        }
        foreach (['/usr/share/php/' . $file, $file] as $path) {
            $resolved = $path[0] === '/' ? (is_file($path) ? $path : false) : stream_resolve_include_path($path);
            if ($resolved !== false) {
                require_once $resolved;
                break;
            }
        }
    }
})();
