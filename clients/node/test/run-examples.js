'use strict';
// Run the Node seed-flow examples (examples/node/report_dashboard.js, analytics_import.js) on
// the package, in RESP2 and RESP3, against a server of our own; print `N passed, N failed`.
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { startServer } = require('./server');

const dir = path.resolve(__dirname, '..', '..', '..', 'examples', 'node');
const examples = ['report_dashboard.js', 'analytics_import.js'];

(async () => {
  const srv = await startServer();
  let passed = 0;
  let failed = 0;
  const lines = [];
  try {
    for (const ex of examples) {
      for (const resp of ['2', '3']) {
        console.log(`---- ${ex} RESP${resp} ----`);
        const r = spawnSync(process.execPath, [path.join(dir, ex)], {
          cwd: dir, stdio: 'inherit', timeout: 60000,
          env: { ...process.env, REDIS_HOST: '127.0.0.1', REDIS_PORT: String(srv.port), REDIS_DB: '15', RESP: resp },
        });
        if (r.status === 0) { passed++; lines.push(`PASS ${ex} RESP${resp}`); } else { failed++; lines.push(`FAIL ${ex} RESP${resp} (exit ${r.status}${r.signal ? `, ${r.signal}` : ''})`); }
      }
    }
  } finally {
    await srv.stop();
  }
  for (const l of lines) console.log(l);
  console.log(`examples: ${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
})().catch((e) => { console.log(`examples: error: ${e.stack || e}`); console.log('examples: 0 passed, 1 failed'); process.exit(1); });
