#!/usr/bin/env node
// Seed flow: "a 20-second report shared by many users", on the rediscache package.
//
// Twenty managers open the sales dashboard at 9:00, through four app servers; the report takes
// 20 s to build (REPORT_MS, 2000 here so the example runs quickly). One request builds it; the
// others wait for it (GETORMARK ... WAIT on the server, no polling) and are served the same
// report. The finance team's import then drops the reports it affects, by tag.
//
//   npm ci && REDIS_PORT=6380 node report_dashboard.js      (RESP=3 for RESP3)
//
// Environment: REDIS_HOST (127.0.0.1), REDIS_PORT (6379), REDIS_DB (15), RESP (2), REPORT_MS (2000).
// Exit status 0 when every check passed.
'use strict';
const { Cache } = require('rediscache');

const host = process.env.REDIS_HOST || '127.0.0.1';
const port = Number(process.env.REDIS_PORT || 6379);
const db = Number(process.env.REDIS_DB || 15);
const RESP = process.env.RESP === '3' ? 3 : 2;
const REPORT_MS = Number(process.env.REPORT_MS || 2000);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const failures = [];
function check(what, got, expected) {
  const ok = JSON.stringify(got) === JSON.stringify(expected);
  console.log(`  ${ok ? 'ok  ' : 'FAIL'} ${what}: ${JSON.stringify(got)}${ok ? '' : ` (expected ${JSON.stringify(expected)})`}`);
  if (!ok) failures.push(what);
}

// The slow part: the "database" work of one sales report.
let builds = 0;
async function buildSalesReport({ region, day }) {
  builds++;
  await sleep(REPORT_MS);
  return { region, day, total: 125000 + builds, orders: 1234, builtAt: Date.now() };
}

// What each app server runs per request: one line around the slow call.
function salesReport(cache, params) {
  return cache.getOrComputeResult(`report:sales:${params.region}:${params.day}`, () => buildSalesReport(params), {
    ttl: 3600, // an hour
    stale: 600, // then ten minutes during which the old report is served while one request rebuilds it
    tags: ['sales', `region:${params.region}`],
    leaseMs: REPORT_MS * 1.5 + 1000, // longer than a build: nobody takes over a build in progress
    waitMs: REPORT_MS * 1.25 + 1000, // how long a request waits for someone else's build
  });
}

async function main() {
  const url = `redis://${host}:${port}/${db}`;
  const servers = Array.from({ length: 4 }, () => new Cache(url, { clientOptions: { RESP } }));
  const admin = servers[0];
  console.log(`report_dashboard: ${url}, RESP${RESP}, report build ${REPORT_MS} ms`);
  await admin.invalidate('report:sales:*'); // a clean slate for this demo's keys only
  await admin.resetStats();

  console.log('1. 9:00, twenty managers open the dashboard at once (4 app servers)');
  const params = { region: 'north', day: '2025-01-14' };
  const t0 = Date.now();
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => salesReport(servers[i % 4], params)));
  const took = Date.now() - t0;
  check('report builds', builds, 1);
  check('every manager got the same report', new Set(results.map((r) => r.value.total)).size, 1);
  // Requests on one app server share its lookup (`coalesced`): 4 lookups reach Redis, one is
  // given the lease (MISS, and its server's 4 other requests share that build), 3 wait for it.
  const lookups = results.filter((r) => !r.coalesced).map((r) => r.state).sort();
  check('lookups that reached Redis', lookups, ['HIT', 'HIT', 'HIT', 'MISS']);
  check(`all answered within one build time (${took} ms)`, took < REPORT_MS * 2 + 1500, true);

  console.log('2. 9:05, more managers: served from the cache, no build');
  const later = await Promise.all(Array.from({ length: 8 }, (_, i) => salesReport(servers[i % 4], params)));
  check('states', [...new Set(later.map((r) => r.state))], ['HIT']);
  check('report builds', builds, 1);

  console.log('3. finance imports new sales for the north: its reports are dropped by tag');
  check('INVALIDATETAG region:north', await admin.invalidateTags(['region:north']), 1);
  const fresh = await salesReport(servers[1], params);
  check('next request rebuilds', [fresh.state, builds], ['MISS', 2]);

  console.log('4. the server counted it all (CACHE.STATS, namespace "report")');
  const s = await admin.stats({ namespace: 'report' });
  console.log(`  ${JSON.stringify({ hits: s.hits, misses: s.misses, pending: s.pending, sets: s.sets, hit_ratio: s.hit_ratio })}`);
  check('one lease per build', s.leases_granted, 2);
  check('sets', s.sets, 2);

  for (const c of servers) await c.close();
  console.log(failures.length ? `report_dashboard RESP${RESP}: ${failures.length} check(s) failed` : `report_dashboard RESP${RESP}: all checks passed`);
  return failures.length ? 1 : 0;
}

main().then((code) => process.exit(code), (e) => { console.log(`report_dashboard: error: ${e.stack || e}`); process.exit(1); });
