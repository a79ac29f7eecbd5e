<?php

declare(strict_types=1);

namespace RedisCache;

use RedisCache\Connection\Connection;
use RedisCache\Exception\ConnectionError;
use RedisCache\Exception\ServerError;

/**
 * The get-or-compute loop on CACHE.GETORMARK / CACHE.SETTAGGED ... LEASE, shared by the PSR-16
 * cache and the Symfony adapter.
 *
 * | GETORMARK reply      | what fetch() does                                                  |
 * |----------------------|--------------------------------------------------------------------|
 * | HIT value            | return value                                                       |
 * | HIT value token      | chosen for early refresh: recompute and store with the token       |
 * | MISS - token         | compute, store with the token, return it                           |
 * | STALE value token    | refresh with the token; if the computation throws, serve the stale |
 * | STALE value -        | another client refreshes it: return the stale value                |
 * | PENDING              | (WAIT ran out) back off and ask again, at most `retries` times,    |
 * |                      | then compute without caching                                       |
 * | server unreachable   | compute without caching                                            |
 *
 * A MISS whose computation throws, or whose result is not to be stored, gives its lease back
 * (CACHE.INVALIDATE of the key, which has no entry), so the next waiter computes at once.
 *
 * Refreshes (STALE with a token, early refresh) run inline, or, with defer_refresh, after the
 * response: the stale/current value is returned at once and the refresh runs at shutdown.
 *
 * @internal
 */
final class Engine
{
    /** @var list<string> what the last fetch() did: HIT, MISS, STALE, PENDING, stored, not-stored, ... */
    public array $trace = [];

    /** @var list<\Closure> refreshes waiting for runDeferred() */
    private array $deferred = [];
    private bool $shutdownRegistered = false;
    /** @var callable|null */
    private $onEvent;

    public function __construct(
        public readonly Connection $connection,
        private int $waitMs = 2000,
        private ?int $leaseMs = null,
        private int $retries = 3,
        private bool $deferRefresh = false,
        private bool $finishRequest = false,
        ?callable $onEvent = null,
    ) {
        $this->onEvent = $onEvent;
    }

    /**
     * @param string                          $key     the full Redis key
     * @param callable(bool, mixed): Computed $produce called with (has previous value, previous value)
     * @param callable(string): mixed         $decode  payload to value; throws \UnexpectedValueException
     * @param array{wait_ms?: int, lease_ms?: ?int, retries?: int, early?: bool, force?: bool} $o
     */
    public function fetch(string $key, callable $produce, callable $decode, array $o = []): mixed
    {
        $this->trace = [];
        if ($o['force'] ?? false) {
            $this->trace[] = 'forced';
            return $this->computeAndStore($key, $produce, false, null, null);
        }
        $args = ['CACHE.GETORMARK', $key];
        $leaseMs = array_key_exists('lease_ms', $o) ? $o['lease_ms'] : $this->leaseMs;
        if ($leaseMs !== null && $leaseMs > 0) {
            array_push($args, 'LEASE', (string) $leaseMs);
        }
        $waitMs = $this->clampWait($o['wait_ms'] ?? $this->waitMs);
        if ($waitMs > 0) {
            array_push($args, 'WAIT', (string) $waitMs);
        }
        $retries = max(0, $o['retries'] ?? $this->retries);
        $early = $o['early'] ?? true;
        $backoffMs = 50;
        for ($attempt = 0; $attempt <= $retries; $attempt++) {
            try {
                $reply = $this->connection->command($args);
            } catch (ConnectionError $e) {
                $this->trace[] = 'unreachable';
                $this->event('unreachable', ['key' => $key, 'exception' => $e]);
                return $this->compute($produce, false, null)->value;
            }
            if (!is_array($reply) || count($reply) !== 3) {
                throw new ServerError('unexpected CACHE.GETORMARK reply: ' . get_debug_type($reply));
            }
            [$state, $payload, $token] = $reply;
            $this->trace[] = (string) $state;
            if ($state === 'MISS') {
                return $this->computeAndStore($key, $produce, false, null, $token);
            }
            if ($state === 'PENDING') {
                if ($attempt < $retries) {
                    usleep($backoffMs * 1000);
                    $backoffMs = min($backoffMs * 2, 1000);
                }
                continue;
            }
            if ($state !== 'HIT' && $state !== 'STALE') {
                throw new ServerError('unexpected CACHE.GETORMARK state: ' . json_encode($state));
            }
            try {
                $value = $decode((string) $payload);
            } catch (\UnexpectedValueException $e) {
                // Not something this cache wrote (another serializer, another application):
                // compute it again, and replace it if we may.
                $this->trace[] = 'undecodable';
                $this->event('undecodable', ['key' => $key, 'exception' => $e]);
                if ($state === 'STALE' && $token === null) {
                    return $this->compute($produce, false, null)->value;
                }
                return $this->computeAndStore($key, $produce, false, null, $token);
            }
            if ($token === null || ($state === 'HIT' && !$early)) {
                return $value;
            }
            $this->trace[] = $state === 'HIT' ? 'early-refresh' : 'refresh';
            if ($this->deferRefresh) {
                $this->defer(function () use ($key, $produce, $value, $token): void {
                    $this->refresh($key, $produce, $value, $token);
                });
                $this->trace[] = 'deferred';
                return $value;
            }
            return $this->refresh($key, $produce, $value, $token);
        }
        // Another client held the lease all along and stored nothing: answer this request
        // anyway, without caching (its lease still protects the key).
        $this->trace[] = 'gave-up';
        $this->event('gave_up', ['key' => $key, 'attempts' => $retries + 1]);
        return $this->compute($produce, false, null)->value;
    }

    /** Run the refreshes that defer_refresh queued. Called at shutdown; callable any time. */
    public function runDeferred(): void
    {
        while ($this->deferred !== []) {
            $job = array_shift($this->deferred);
            $job();
        }
    }

    /** Refresh an entry whose current value is being served; the fail-safe lives here. */
    private function refresh(string $key, callable $produce, mixed $current, string $token): mixed
    {
        try {
            return $this->computeAndStore($key, $produce, true, $current, $token);
        } catch (\Throwable $e) {
            $this->trace[] = 'served-stale';
            $this->event('stale_served', ['key' => $key, 'exception' => $e]);
            return $current;
        }
    }

    private function computeAndStore(string $key, callable $produce, bool $hasPrevious, mixed $previous, ?string $token): mixed
    {
        $started = hrtime(true);
        try {
            $computed = $this->compute($produce, $hasPrevious, $previous);
        } catch (\Throwable $e) {
            if ($token !== null && !$hasPrevious) {
                $this->release($key);
            }
            throw $e;
        }
        $costMs = max(1, intdiv(hrtime(true) - $started, 1_000_000));
        if (!$this->store($key, $computed, $costMs, $token) && $token !== null && !$hasPrevious
            && end($this->trace) === 'not-saved') {
            $this->release($key);
        }
        return $computed->value;
    }

    /**
     * Give up a lease on a key that has no entry (the computation threw, or its result is not to
     * be stored): CACHE.INVALIDATE of the key voids the lease and hands it at once to a caller
     * blocked in WAIT, instead of keeping every other caller waiting until it lapses.
     */
    private function release(string $key): void
    {
        try {
            $this->connection->command(['CACHE.INVALIDATE', Cache::escape($key)]);
            $this->trace[] = 'released';
        } catch (ConnectionError|ServerError $e) {
            $this->event('error', ['key' => $key, 'exception' => $e]);
        }
    }

    private function compute(callable $produce, bool $hasPrevious, mixed $previous): Computed
    {
        $computed = $produce($hasPrevious, $previous);
        if (!$computed instanceof Computed) {
            throw new \LogicException('produce() must return a Computed');
        }
        return $computed;
    }

    /** SETTAGGED [LEASE token]; true when stored. */
    public function store(string $key, Computed $c, ?int $costMs, ?string $token): bool
    {
        if ($c->payload === null || ($c->ttlMs !== null && $c->ttlMs <= 0)) {
            $this->trace[] = 'not-saved';
            return false;
        }
        $args = ['CACHE.SETTAGGED', $key, $c->payload];
        if ($c->ttlMs !== null) {
            array_push($args, 'PX', (string) $c->ttlMs);
        }
        if ($c->staleS > 0) {
            array_push($args, 'STALE', (string) $c->staleS);
        }
        if ($costMs !== null) {
            array_push($args, 'COST', (string) $costMs);
        }
        if ($token !== null) {
            array_push($args, 'LEASE', $token);
        }
        if ($c->tags !== []) {
            $args[] = 'TAGS';
            foreach ($c->tags as $tag) {
                $args[] = (string) $tag;
            }
        }
        try {
            $reply = $this->connection->command($args);
        } catch (ConnectionError $e) {
            $this->trace[] = 'store-failed';
            $this->event('store_failed', ['key' => $key, 'exception' => $e]);
            return false;
        } catch (ServerError $e) {
            // e.g. more tags than cache.max-tags, or WRONGTYPE: the caller keeps its value.
            $this->trace[] = 'store-failed';
            $this->event('error', ['key' => $key, 'exception' => $e]);
            return false;
        }
        if ($reply === null) {
            // The lease was voided (an invalidation, or a newer write) while we computed: our
            // value may predate that change, so it is not cached. The caller still gets it.
            $this->trace[] = 'not-stored';
            $this->event('lease_refused', ['key' => $key]);
            return false;
        }
        $this->trace[] = 'stored';
        return true;
    }

    private function clampWait(int $waitMs): int
    {
        $timeout = $this->connection->readTimeoutMs();
        if ($timeout !== null) {
            // A WAIT longer than the client's read timeout would look like a dead server.
            $waitMs = min($waitMs, $timeout - 500);
        }
        return max(0, $waitMs);
    }

    private function defer(\Closure $job): void
    {
        $this->deferred[] = $job;
        if (!$this->shutdownRegistered) {
            $this->shutdownRegistered = true;
            register_shutdown_function(function (): void {
                if ($this->finishRequest && function_exists('fastcgi_finish_request')) {
                    fastcgi_finish_request(); // PHP-FPM: send the response before refreshing
                }
                $this->runDeferred();
            });
        }
    }

    /** @param array<string, mixed> $context */
    public function event(string $event, array $context): void
    {
        if ($this->onEvent !== null) {
            ($this->onEvent)($event, $context);
        }
    }
}
