'use strict';
// A minimal RESP2 connection for the near cache's subscriber: it only needs AUTH, SELECT-free
// CLIENT ID, SUBSCRIBE and the messages that follow, and it must say at once when the socket
// closes (so that the near cache drops its copies). Values are kept as Buffers/strings.

const net = require('node:net');
const tls = require('node:tls');
const { EventEmitter } = require('node:events');

class RespError extends Error {}

// Parse one RESP2 value from buf at offset; returns [value, nextOffset] or undefined when
// the buffer does not hold a whole value yet.
function parse(buf, off) {
  if (off >= buf.length) return undefined;
  const type = buf[off];
  const eol = buf.indexOf('\r\n', off);
  if (eol < 0) return undefined;
  const line = buf.toString('utf8', off + 1, eol);
  const next = eol + 2;
  switch (type) {
    case 0x2b: return [line, next]; // +
    case 0x2d: return [new RespError(line), next]; // -
    case 0x3a: return [Number(line), next]; // :
    case 0x24: { // $
      const n = Number(line);
      if (n < 0) return [null, next];
      if (buf.length < next + n + 2) return undefined;
      return [buf.toString('utf8', next, next + n), next + n + 2];
    }
    case 0x2a: { // *
      const n = Number(line);
      if (n < 0) return [null, next];
      const out = new Array(n);
      let at = next;
      for (let i = 0; i < n; i++) {
        const r = parse(buf, at);
        if (!r) return undefined;
        [out[i], at] = r;
      }
      return [out, at];
    }
    default:
      throw new RespError(`protocol error: unexpected byte ${type}`);
  }
}

const encode = (args) => {
  const parts = [`*${args.length}\r\n`];
  for (const a of args) {
    const b = Buffer.isBuffer(a) ? a : Buffer.from(String(a));
    parts.push(`$${b.length}\r\n`, b, '\r\n');
  }
  return Buffer.concat(parts.map((p) => (Buffer.isBuffer(p) ? p : Buffer.from(p))));
};

// Events: 'message' (channel, payload) for Pub/Sub messages, 'close'.
class RespConnection extends EventEmitter {
  constructor({ host, port, tls: useTls, username, password, connectTimeoutMs = 2000 }) {
    super();
    this.opts = { host, port, useTls, username, password, connectTimeoutMs };
    this._buf = Buffer.alloc(0);
    this._pending = [];
    this.closed = false;
  }

  connect() {
    const { host, port, useTls, connectTimeoutMs } = this.opts;
    return new Promise((resolve, reject) => {
      const sock = useTls ? tls.connect({ host, port, servername: host }) : net.connect({ host, port });
      this.sock = sock;
      sock.setNoDelay(true);
      const timer = setTimeout(() => { sock.destroy(new Error('connect timeout')); }, connectTimeoutMs);
      sock.once(useTls ? 'secureConnect' : 'connect', () => { clearTimeout(timer); resolve(); });
      sock.on('data', (d) => this._onData(d));
      sock.on('error', (e) => { clearTimeout(timer); reject(e); });
      sock.on('close', () => {
        clearTimeout(timer);
        this.closed = true;
        for (const p of this._pending.splice(0)) p.reject(new Error('connection closed'));
        this.emit('close');
      });
    }).then(async () => {
      if (this.opts.password) {
        await this.command(this.opts.username ? ['AUTH', this.opts.username, this.opts.password] : ['AUTH', this.opts.password]);
      }
    });
  }

  _onData(d) {
    this._buf = this._buf.length ? Buffer.concat([this._buf, d]) : d;
    let off = 0;
    for (;;) {
      let r;
      try {
        r = parse(this._buf, off);
      } catch (e) {
        this.sock.destroy(e);
        return;
      }
      if (!r) break;
      const [value, next] = r;
      off = next;
      this._dispatch(value);
    }
    this._buf = off >= this._buf.length ? Buffer.alloc(0) : this._buf.subarray(off);
  }

  _dispatch(value) {
    if (Array.isArray(value) && value[0] === 'message' && value.length === 3) {
      this.emit('message', value[1], value[2]);
      return;
    }
    const p = this._pending.shift();
    if (!p) return;
    if (value instanceof RespError) p.reject(value);
    else p.resolve(value);
  }

  // One command; its reply (SUBSCRIBE: one reply per channel, so `replies` of them).
  command(args, replies = 1) {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    const all = [];
    for (let i = 0; i < replies; i++) all.push(new Promise((resolve, reject) => this._pending.push({ resolve, reject })));
    this.sock.write(encode(args));
    return replies === 1 ? all[0] : Promise.all(all);
  }

  close() {
    this.closed = true;
    if (this.sock) this.sock.destroy();
  }
}

module.exports = { RespConnection, parse, encode, RespError };
