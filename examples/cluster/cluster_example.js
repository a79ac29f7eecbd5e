// Tag invalidation on Redis Cluster with node-redis' createCluster: keyed commands route by
// their first key; keyless ones go to one primary's client, and the module reaches every
// shard itself.
const { createCluster } = require('redis');

(async () => {
  const cluster = createCluster({ rootNodes: [{ url: `redis://127.0.0.1:${process.env.CLUSTER_PORT}` }] });
  await cluster.connect();
  const keys = Array.from({ length: 30 }, (_, i) => `report:${i}`);
  for (const k of keys) {
    await cluster.sendCommand(k, false, ['CACHE.SETTAGGED', k, 'rendered', 'EX', '300', 'TAGS', 'report:sales']);
  }
  const primary = await cluster.nodeClient(cluster.masters[0]);
  const n = await primary.sendCommand(['CACHE.INVALIDATETAG', 'report:sales']);
  let left = 0;
  for (const k of keys) {
    if ((await cluster.sendCommand(k, true, ['CACHE.GET', k])) !== null) left++;
  }
  console.log(`node: INVALIDATETAG answered ${n}; ${left} left`);
  await cluster.close();
  process.exit(n === 30 && left === 0 ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(1); });
