<?php

declare(strict_types=1);

namespace RedisCache\Connection;

use Predis\ClientInterface;
use Predis\Command\RawCommand;
use Predis\Connection\NodeConnectionInterface;
use Predis\CommunicationException;
use Predis\Response\ErrorInterface;
use Predis\Response\ResponseInterface;
use RedisCache\Exception\ConnectionError;
use RedisCache\Exception\ServerError;

/**
 * Predis (1.x and 2.x). Commands go through executeRaw(), so the client's `prefix` option does
 * not apply to cache commands (give the cache its own prefix instead).
 *
 * On a Redis Cluster connection (`['cluster' => 'redis']`), the CACHE.* commands that name a key
 * are taught to the cluster strategy (routed by their first argument), and the keyless ones
 * (INVALIDATE, INVALIDATETAG, STATS, TAGSCAN) go to one node, which applies them to the whole
 * cluster (API.md, "Redis Cluster").
 *
 * @internal
 */
final class PredisConnection implements Connection
{
    use OneAtATime;

    private const KEYED = ['CACHE.GETORMARK', 'CACHE.GET', 'CACHE.SETTAGGED', 'CACHE.TAGS'];
    private const KEYLESS = ['CACHE.INVALIDATE' => true, 'CACHE.INVALIDATETAG' => true,
        'CACHE.STATS' => true, 'CACHE.TAGSCAN' => true];

    private ?object $cluster = null;

    public function __construct(private ClientInterface $client)
    {
        $connection = $client->getConnection();
        foreach (['Predis\Connection\Aggregate\ClusterInterface', 'Predis\Connection\Cluster\ClusterInterface'] as $interface) {
            if (interface_exists($interface) && $connection instanceof $interface) {
                $this->cluster = $connection;
                if (method_exists($connection, 'getClusterStrategy')) {
                    $strategy = $connection->getClusterStrategy();
                    foreach (self::KEYED as $id) {
                        $strategy->setCommandHandler($id, static fn($command) => $command->getArgument(0));
                    }
                }
            }
        }
    }

    public function command(array $args): mixed
    {
        if ($this->cluster !== null && isset(self::KEYLESS[strtoupper($args[0])])) {
            return $this->onAnyNode($args);
        }
        $error = false;
        try {
            $reply = $this->client->executeRaw($args, $error);
        } catch (CommunicationException $e) {
            throw new ConnectionError($e->getMessage(), 0, $e);
        }
        if ($error) {
            throw new ServerError((string) $reply);
        }
        return self::normalise($reply);
    }

    public function pipeline(array $commands): array
    {
        if ($commands === []) {
            return [];
        }
        $connection = $this->client->getConnection();
        if (!$connection instanceof NodeConnectionInterface) {
            // A cluster or replication connection: one command at a time keeps routing right.
            return $this->oneAtATime($commands);
        }
        $raw = [];
        try {
            foreach ($commands as $args) {
                $command = RawCommand::create(...$args);
                $connection->writeRequest($command);
                $raw[] = $command;
            }
            $out = [];
            foreach ($raw as $command) {
                $out[] = self::normalise($connection->readResponse($command));
            }
        } catch (CommunicationException $e) {
            $connection->disconnect(); // the replies still in flight would be read by the next call
            throw new ConnectionError($e->getMessage(), 0, $e);
        }
        return $out;
    }

    /** A keyless command of a cluster, sent to one node (the module fans it out). */
    private function onAnyNode(array $args): mixed
    {
        try {
            $nodes = iterator_to_array($this->cluster);
            if ($nodes === []) {
                throw new ConnectionError('the cluster has no known node');
            }
            $node = $nodes[array_rand($nodes)];
            $reply = $node->executeCommand(RawCommand::create(...$args));
        } catch (CommunicationException $e) {
            throw new ConnectionError($e->getMessage(), 0, $e);
        }
        $reply = self::normalise($reply);
        if ($reply instanceof ServerError) {
            throw $reply;
        }
        return $reply;
    }

    public function readTimeoutMs(): ?int
    {
        $connection = $this->client->getConnection();
        $timeout = null;
        if ($connection instanceof NodeConnectionInterface) {
            $timeout = $connection->getParameters()->read_write_timeout ?? null;
        }
        if ($timeout === null) {
            return Connections::defaultSocketTimeoutMs();
        }
        $timeout = (float) $timeout;
        return $timeout > 0 ? (int) ($timeout * 1000) : null;
    }

    private static function normalise(mixed $reply): mixed
    {
        if ($reply instanceof ErrorInterface) {
            return new ServerError($reply->getMessage());
        }
        if ($reply instanceof ResponseInterface) {
            return (string) $reply; // a status reply
        }
        if (is_array($reply)) {
            return array_map([self::class, 'normalise'], $reply);
        }
        return $reply;
    }
}
