<?php

declare(strict_types=1);

namespace RedisCache\Symfony;

use Symfony\Contracts\Cache\ItemInterface;

/**
 * The item a TagAwareAdapter::get() callback receives: set its expiry (expiresAfter/expiresAt)
 * and its tags (tag()); its value is what the callback returns.
 */
final class Item implements ItemInterface
{
    private ?float $expiry;
    /** @var array<string, string> */
    private array $newTags = [];

    /** @internal */
    public function __construct(
        private string $key,
        private mixed $value,
        private bool $isHit,
        private array $metadata,
        private int $defaultLifetime,
    ) {
        $this->expiry = $defaultLifetime > 0 ? microtime(true) + $defaultLifetime : null;
    }

    public function getKey(): string
    {
        return $this->key;
    }

    public function get(): mixed
    {
        return $this->value;
    }

    public function isHit(): bool
    {
        return $this->isHit;
    }

    public function set($value): static
    {
        $this->value = $value;
        return $this;
    }

    public function expiresAt($expiration): static
    {
        if ($expiration === null) {
            $this->expiry = $this->defaultLifetime > 0 ? microtime(true) + $this->defaultLifetime : null;
        } elseif ($expiration instanceof \DateTimeInterface) {
            $this->expiry = (float) $expiration->format('U.u');
        } else {
            throw new InvalidArgumentException(sprintf(
                'Expiration date must implement DateTimeInterface or be null, "%s" given.',
                get_debug_type($expiration)
            ));
        }
        return $this;
    }

    public function expiresAfter($time): static
    {
        if ($time === null) {
            $this->expiry = $this->defaultLifetime > 0 ? microtime(true) + $this->defaultLifetime : null;
        } elseif ($time instanceof \DateInterval) {
            $this->expiry = microtime(true) + (float) \DateTime::createFromFormat('U', '0')->add($time)->format('U.u');
        } elseif (is_int($time)) {
            $this->expiry = $time + microtime(true);
        } else {
            throw new InvalidArgumentException(sprintf(
                'Expiration date must be an integer, a DateInterval or null, "%s" given.',
                get_debug_type($time)
            ));
        }
        return $this;
    }

    public function tag($tags): ItemInterface
    {
        if (!is_iterable($tags)) {
            $tags = [$tags];
        }
        foreach ($tags as $tag) {
            if (!is_string($tag) && !($tag instanceof \Stringable)) {
                throw new InvalidArgumentException(sprintf('Cache tag must be string or object that implements __toString(), "%s" given.', get_debug_type($tag)));
            }
            $tag = (string) $tag;
            if (isset($this->newTags[$tag])) {
                continue;
            }
            if ($tag === '') {
                throw new InvalidArgumentException('Cache tag length must be greater than zero.');
            }
            if (strpbrk($tag, self::RESERVED_CHARACTERS) !== false) {
                throw new InvalidArgumentException(sprintf('Cache tag "%s" contains reserved characters "%s".', $tag, self::RESERVED_CHARACTERS));
            }
            $this->newTags[$tag] = $tag;
        }
        return $this;
    }

    public function getMetadata(): array
    {
        return $this->metadata;
    }

    /** @internal @return list<string> */
    public function newTags(): array
    {
        return array_values($this->newTags);
    }

    /** @internal absolute unix time, seconds; null: no expiry */
    public function expiry(): ?float
    {
        return $this->expiry;
    }
}
