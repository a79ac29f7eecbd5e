<?php
// Tag invalidation on Redis Cluster with phpredis' RedisCluster: rawCommand's first argument
// routes the call (a key, or [host, port] for keyless commands, sent to one primary: the
// module reaches every shard itself).
$rc = new RedisCluster(NULL, ['127.0.0.1:' . getenv('CLUSTER_PORT')], 2.0, 5.0);
$keys = [];
for ($i = 0; $i < 30; $i++) {
    $keys[] = "report:$i";
    $rc->rawCommand("report:$i", 'CACHE.SETTAGGED', "report:$i", 'rendered', 'EX', 300, 'TAGS', 'report:sales');
}
$primary = $rc->_masters()[0];
$n = $rc->rawCommand($primary, 'CACHE.INVALIDATETAG', 'report:sales');
$left = 0;
foreach ($keys as $k) {
    $v = $rc->rawCommand($k, 'CACHE.GET', $k);
    if ($v !== null && $v !== false) { $left++; }
}
echo "php: INVALIDATETAG answered $n; $left left\n";
exit(($n === 30 && $left === 0) ? 0 : 1);
