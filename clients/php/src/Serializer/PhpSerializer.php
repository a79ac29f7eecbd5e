<?php

declare(strict_types=1);

namespace RedisCache\Serializer;

use RedisCache\Exception\InvalidArgumentException;

/** PHP's serialize(): every PHP value (null, false, floats, arrays, objects) round-trips. */
final class PhpSerializer implements Serializer
{
    /** @param bool|list<class-string> $allowedClasses passed to unserialize() */
    public function __construct(private bool|array $allowedClasses = true)
    {
    }

    public function serialize(mixed $value): string
    {
        try {
            return serialize($value);
        } catch (\Throwable $e) { // closures, some internal objects
            throw new InvalidArgumentException('Cannot serialize the value: ' . $e->getMessage(), 0, $e);
        }
    }

    public function unserialize(string $payload): mixed
    {
        if ($payload === 'b:0;') {
            return false;
        }
        $value = @unserialize($payload, ['allowed_classes' => $this->allowedClasses]);
        if ($value === false) {
            throw new \UnexpectedValueException('The entry does not hold a PHP-serialized value');
        }
        return $value;
    }
}
