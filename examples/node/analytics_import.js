#!/usr/bin/env node
// Seed flow: "analytics invalidated after a batch import", on the rediscache package.
//
// A batch job imports scraped social-media data every two hours. Deleting every analytics
// entry afterwards would send every dashboard to the database at once. A soft invalidation
// turns them stale instead: every reader is still answered at once with the old summary,
// while exactly one reader per entry recomputes it, off its request's path.
//
//   npm ci && REDIS_PORT=6380 node analytics_import.js      (RESP=3 for RESP3)
//
// Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_DB (15), RESP (2).
// Exit status 0 when every check passed.
'use strict';
const { Cache } = require('rediscache');

const host = process.env.REDIS_HOST || '127.0.0.1';
const port = Number(process.env.REDIS_PORT || 6379);
const db = Number(process.env.REDIS_DB || 15);
const RESP = process.env.RESP === '3' ? 3 : 2;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const failures = [];
function check(what, got, expected) {
  const ok = JSON.stringify(got) === JSON.stringify(expected);
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${JSON.stringify(got)}${ok ? '' : ` (expected ${JSON.stringify(expected)})`}`);
  if (!ok) failures.push(what);
}

// The "database": posts per city, and the queries the dashboards run.
const posts = { langkawi: 120, penang: 80, alor_setar: 40 };
let importRound = 1;
let queries = 0;
async function sentimentSummary(city) {
  queries++;
  await sleep(300); // an aggregate over the imported posts
  return { city, posts: posts[city], round: importRound };
}

const cities = Object.keys(posts);
const key = (city) => `kedah_tourism:sentiment_summary:city=${city}:range=7d`;
// Every dashboard request, on any app server.
const dashboard = (cache, city) => cache.getOrComputeResult(key(city), () => sentimentSummary(city), {
  ttl: 2 * 3600, // until the next import at the latest
  stale: 2 * 3600, // and served as STALE for up to two more hours while it is refreshed
  tags: ['analytics', `city:${city}`],
});

async function main() {
  const url = `redis://${host}:${port}/${db}`;
  const servers = Array.from({ length: 5 }, () => new Cache(url, { clientOptions: { RESP } }));
  const admin = servers[0];
  console.log(`analytics_import: ${url}, RESP${RESP}`);
  await admin.invalidate('kedah_tourism:*');
  await admin.resetStats();

  console.log('1. the dashboards warm up: one query per summary');
  await Promise.all(cities.map((c) => dashboard(admin, c)));
  check('queries', queries, 3);

  console.log('2. the batch import lands: soft-invalidate everything tagged analytics');
  for (const c of cities) posts[c] += 10;
  importRound = 2;
  check('INVALIDATETAG analytics SOFT', await admin.softInvalidateTags(['analytics']), 3);

  console.log('3. 60 readers on 5 app servers right after: all answered at once, one refresh per summary');
  queries = 0;
  const t0 = Date.now();
  const reads = await Promise.all(Array.from({ length: 60 }, (_, i) => dashboard(servers[i % 5], cities[i % 3])));
  const took = Date.now() - t0;
  check(`answered without waiting for a query (${took} ms)`, took < 250, true);
  check('every reader got the pre-import summary', [...new Set(reads.map((r) => r.value.round))], [1]);
  check('every answer was STALE', [...new Set(reads.map((r) => r.state))], ['STALE']);
  // Readers on one app server share its lookup (`coalesced`); of the 15 lookups (5 servers x
  // 3 summaries), the server gave the refresh lease to exactly one per summary.
  check('lookups sent to Redis', reads.filter((r) => !r.coalesced).length, 15);
  check('refreshes started (one per summary)', reads.filter((r) => r.refreshing && !r.coalesced).length, 3);
  await Promise.all(servers.map((c) => c.drain()));
  check('queries: one per summary, not one per reader', queries, 3);

  console.log('4. after the refreshes: fresh summaries, from the cache');
  const after = await Promise.all(cities.map((c) => dashboard(servers[2], c)));
  check('states', after.map((r) => r.state), ['HIT', 'HIT', 'HIT']);
  check('import round', after.map((r) => r.value.round), [2, 2, 2]);

  console.log('5. a re-scrape of one city: a soft invalidation by key pattern');
  importRound = 3;
  check("INVALIDATE 'kedah_tourism:*city=penang*' SOFT", await admin.softInvalidate('kedah_tourism:*city=penang*'), 1);
  const p = await dashboard(servers[3], 'penang');
  check('penang: STALE, refreshing', [p.state, p.value.round, p.refreshing], ['STALE', 2, true]);
  await servers[3].drain();
  check('penang refreshed', (await dashboard(servers[4], 'penang')).value.round, 3);
  check('langkawi untouched', (await dashboard(servers[4], 'langkawi')).state, 'HIT');

  const s = await admin.stats({ namespace: 'kedah_tourism' });
  console.log(`  CACHE.STATS kedah_tourism: ${JSON.stringify({ hits: s.hits, stale_hits: s.stale_hits, misses: s.misses, hit_ratio: s.hit_ratio })}`);
  check('stale hits counted by the server (15 lookups in step 3, 1 in step 5)', s.stale_hits, 16);

  for (const c of servers) await c.close();
  console.log(failures.length ? `analytics_import RESP${RESP}: ${failures.length} check(s) failed` : `analytics_import RESP${RESP}: all checks passed`);
  return failures.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => { console.log(`analytics_import: error: ${e.stack || e}`); process.exit(1); });
