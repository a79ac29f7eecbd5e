'use strict';
// Start a redis-server with the module on a free loopback port in a temp dir (never 6379).
// REDIS_SERVER: server binary (default /usr/bin/redis-server); CACHE_MODULE: the module
// (default <repo>/target/release/librediscache.so).

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const repo = path.resolve(__dirname, '..', '..', '..');
const SERVER = process.env.REDIS_SERVER || '/usr/bin/redis-server';
const MODULE = process.env.CACHE_MODULE || path.join(repo, 'target', 'release', 'librediscache.so');

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => (port === 6379 ? freePort().then(resolve, reject) : resolve(port)));
    });
  });
}

function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let buf = '';
    sock.setTimeout(300, () => { sock.destroy(); resolve(false); });
    sock.on('error', () => resolve(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      buf += d;
      if (buf.includes('\r\n')) { sock.destroy(); resolve(buf.startsWith('+PONG')); }
    });
  });
}

async function startServer(extraArgs = []) {
  if (!fs.existsSync(MODULE)) throw new Error(`no module at ${MODULE} (cargo build --release, or set CACHE_MODULE)`);
  let lastLog = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rediscache-node-'));
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '',
      '--appendonly', 'no', '--loadmodule', MODULE, ...extraArgs];
    const proc = spawn(SERVER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    proc.stdout.on('data', (d) => { log += d; });
    proc.stderr.on('data', (d) => { log += d; });
    let exited = false;
    proc.on('exit', () => { exited = true; });
    for (let i = 0; i < 100 && !exited; i++) {
      if (await ping(port)) {
        const stop = () => new Promise((resolve) => {
          if (exited) { fs.rmSync(dir, { recursive: true, force: true }); resolve(); return; }
          proc.once('exit', () => { fs.rmSync(dir, { recursive: true, force: true }); resolve(); });
          proc.kill('SIGTERM');
          setTimeout(() => proc.kill('SIGKILL'), 3000).unref();
        });
        return { port, url: `redis://127.0.0.1:${port}`, proc, stop, log: () => log };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    lastLog = log;
    proc.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  }
  throw new Error(`could not start ${SERVER} with ${MODULE}:\n${lastLog}`);
}

module.exports = { startServer, SERVER, MODULE };
