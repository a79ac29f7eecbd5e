"""Tag invalidation on Redis Cluster with redis-py's RedisCluster: keyed commands route by key;
keyless ones go to one primary (target_nodes), and the module reaches every shard itself."""
import os
import sys

from redis.cluster import RedisCluster

rc = RedisCluster(host="127.0.0.1", port=int(os.environ["CLUSTER_PORT"]))
primary = rc.get_default_node()
keys = [f"report:{i}" for i in range(30)]
for k in keys:
    rc.execute_command("CACHE.SETTAGGED", k, "rendered", "EX", 300, "TAGS", "report:sales")
shards = {rc.get_node_from_key(k).name for k in keys}
n = rc.execute_command("CACHE.INVALIDATETAG", "report:sales", target_nodes=primary)
left = [k for k in keys if rc.execute_command("CACHE.GET", k) is not None]
stats = rc.execute_command("CACHE.STATS", target_nodes=primary)
print(f"python: {len(keys)} entries on {len(shards)} shards; INVALIDATETAG answered {n}; "
      f"{len(left)} left; cluster-wide entries {stats[b'entries']}")
rc.close()
sys.exit(0 if (n, left, stats[b"entries"], len(shards)) == (30, [], 0, 3) else 1)
