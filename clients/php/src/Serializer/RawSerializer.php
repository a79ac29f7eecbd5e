<?php

declare(strict_types=1);

namespace RedisCache\Serializer;

use RedisCache\Exception\InvalidArgumentException;

/** The bytes as they are: strings in, strings out (ints, floats and Stringable objects are cast). */
final class RawSerializer implements Serializer
{
    public function serialize(mixed $value): string
    {
        if (is_string($value)) {
            return $value;
        }
        if (is_int($value) || is_float($value) || $value instanceof \Stringable) {
            return (string) $value;
        }
        throw new InvalidArgumentException(sprintf(
            'The raw serializer stores strings only, "%s" given.',
            get_debug_type($value)
        ));
    }

    public function unserialize(string $payload): mixed
    {
        return $payload;
    }
}
