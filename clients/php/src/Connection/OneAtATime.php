<?php

declare(strict_types=1);

namespace RedisCache\Connection;

use RedisCache\Exception\ServerError;

/**
 * A "pipeline" of one command at a time, for connections that cannot pipeline across slots:
 * each reply in order, an error reply as its ServerError (as a real pipeline gives it).
 *
 * @internal
 */
trait OneAtATime
{
    /** @param list<list<string>> $commands */
    private function oneAtATime(array $commands): array
    {
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
}
