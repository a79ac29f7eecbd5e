'use strict';
// Near cache vs plain GETORMARK, Node: a read-heavy loop (95% reads of 10,000 hot keys, 5%
// writes that invalidate a tag from another app server), requests per second of each, and
// the staleness window of the near cache (invalidation reply -> the near cache applied it).
//
//   node bench/near-bench.js [seconds=5] [workers=64]
// Environment: CACHE_MODULE, REDIS_SERVER as for the tests. Prints one line per figure and a
// JSON summary on the last line.
const { Cache, NearCache } = require('..');
const { startServer } = require('../test/server');

const SECONDS = Number(process.argv[2] || 5);
const WORKERS = Number(process.argv[3] || 64);
const KEYS = 10000;
const GROUPS = 10000; // one tag per key: a write invalidates one hot key, by its tag
const WRITE_RATIO = 0.05;

const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN; };

async function run(label, reader, writer, onWrite) {
  let reads = 0;
  let writes = 0;
  const end = Date.now() + SECONDS * 1000;
  const opts = (i) => ({ ttl: 300, tags: [`g:${i % GROUPS}`] });
  const worker = async () => {
    while (Date.now() < end) {
      const i = Math.floor(Math.random() * KEYS);
      if (Math.random() < WRITE_RATIO) {
        const tag = `g:${i % GROUPS}`;
        await writer.invalidateTags([tag]);
        if (onWrite) onWrite(tag, performance.now());
        writes++;
      } else {
        await reader.getOrCompute(`hot:${i}`, async () => `value ${i}`, opts(i));
        reads++;
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: WORKERS }, worker));
  const secs = (performance.now() - t0) / 1000;
  const rps = (reads + writes) / secs;
  console.log(`${label}: ${Math.round(rps)} requests/s (${reads} reads, ${writes} writes in ${secs.toFixed(1)} s, ${WORKERS} concurrent)`);
  return rps;
}

(async () => {
  const srv = await startServer();
  const url = `${srv.url}/0`;
  try {
    const writer = new Cache(url); // another app server
    const warm = new Cache(url);
    for (let i = 0; i < KEYS; i += 1000) {
      await Promise.all(Array.from({ length: 1000 }, (_, j) => warm.set(`hot:${i + j}`, `value ${i + j}`, { ttl: 300, tags: [`g:${(i + j) % GROUPS}`] })));
    }
    const plain = new Cache(url);
    const plainRps = await run('plain Cache (GETORMARK per read)', plain, writer);

    const near = new NearCache(url, { maxEntries: KEYS * 2 });
    await near.ready();
    for (let i = 0; i < KEYS; i += 1000) await Promise.all(Array.from({ length: 1000 }, (_, j) => near.get(`hot:${i + j}`)));
    // Each INVALIDATETAG publishes one message: per tag, pair the n-th reply with the n-th
    // message; a message handled before its reply counts as 0.
    const msgs = new Map();
    const replies = new Map();
    const waiting = new Map();
    const windows = [];
    near.on('invalidate', (e) => {
      if (e.kind !== 'tag') return;
      msgs.set(e.arg, (msgs.get(e.arg) || 0) + 1);
      const w = waiting.get(e.arg);
      if (w && w.length) windows.push(e.rulesAt - w.shift());
    });
    const onWrite = (tag, at) => {
      replies.set(tag, (replies.get(tag) || 0) + 1);
      if ((msgs.get(tag) || 0) >= replies.get(tag)) windows.push(0);
      else { if (!waiting.has(tag)) waiting.set(tag, []); waiting.get(tag).push(at); }
    };
    const nearRps = await run('NearCache (L1 -> WITHMETA -> GETORMARK)', near, writer, onWrite);
    const ls = near.localStats();
    const hitRatio = ls.hits / (ls.hits + ls.misses);
    console.log(`NearCache local hit ratio ${(hitRatio * 100).toFixed(1)}%; staleness window (invalidation reply -> applied locally), ${windows.length} writes: ` +
      `p50 ${pct(windows, 50).toFixed(2)} ms, p99 ${pct(windows, 99).toFixed(2)} ms, max ${Math.max(...windows).toFixed(2)} ms`);
    console.log(`speed-up: ${(nearRps / plainRps).toFixed(2)}x`);
    console.log(JSON.stringify({ plain_rps: Math.round(plainRps), near_rps: Math.round(nearRps), near_local_hit_ratio: Number(hitRatio.toFixed(4)),
      staleness_p50_ms: Number(pct(windows, 50).toFixed(3)), staleness_p99_ms: Number(pct(windows, 99).toFixed(3)), seconds: SECONDS, workers: WORKERS }));
    await near.close();
    for (const c of [writer, warm, plain]) await c.close();
  } finally {
    await srv.stop();
  }
})().catch((e) => { console.error(e); process.exit(1); });
