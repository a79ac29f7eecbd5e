<?php

declare(strict_types=1);

namespace RedisCache\Serializer;

use RedisCache\Exception\InvalidArgumentException;

/**
 * JSON, readable and writable by other languages (a Python job's json.dumps()). Objects come
 * back as associative arrays.
 */
final class JsonSerializer implements Serializer
{
    private const FLAGS = JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_PRESERVE_ZERO_FRACTION;

    public function serialize(mixed $value): string
    {
        try {
            return json_encode($value, self::FLAGS | JSON_THROW_ON_ERROR);
        } catch (\JsonException $e) {
            throw new InvalidArgumentException('Cannot encode the value as JSON: ' . $e->getMessage(), 0, $e);
        }
    }

    public function unserialize(string $payload): mixed
    {
        try {
            return json_decode($payload, true, 512, JSON_THROW_ON_ERROR | JSON_BIGINT_AS_STRING);
        } catch (\JsonException $e) {
            throw new \UnexpectedValueException('The entry does not hold JSON: ' . $e->getMessage(), 0, $e);
        }
    }
}
