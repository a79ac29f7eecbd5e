<?php

declare(strict_types=1);

namespace RedisCache\Serializer;

/** Turns PHP values into the bytes stored in an entry, and back. */
interface Serializer
{
    /** @throws \RedisCache\Exception\InvalidArgumentException when the value cannot be stored */
    public function serialize(mixed $value): string;

    /** @throws \UnexpectedValueException when the bytes are not something this serializer wrote */
    public function unserialize(string $payload): mixed;
}
