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
 * @internal
 */
final class PredisConnection implements Connection
{
    public function __construct(private ClientInterface $client)
    {
    }

    public function command(array $args): mixed
    {
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
            $out = [];
            foreach ($commands as $args) {
                try {
                    $out[] = $this->command($args);
                } catch (ServerError $e) {
                    $out[] = $e;
                }
            }
            return $out;
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
