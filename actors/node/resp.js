'use strict';
// resp.js: the Redis protocol (RESP) logic of the benchmark's Redis-protocol
// server, without any transport: actors/node/redis.js runs it on our Node.js
// library through netcore, tests/bench/node-redis.js on Node's own `net`, so
// the two differ only in the socket underneath. The same logic as actors/redis.c
// (C) and actors/python/resp.py (Python).
//
// Multibulk ("*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\n") and inline ("PING\r\n", words
// split on blanks, without Redis's quoting) commands, pipelined and split
// across reads at any byte. PING [msg], ECHO msg, SET key value, GET key; any
// other command gets Redis's "-ERR unknown command ...". Bounds as Redis's
// defaults: bulk <= 512 MiB, an inline command or a "*N"/"$N" line <= 64 KiB,
// <= 1,048,576 arguments; a protocol error gets Redis's "-ERR Protocol error:
// ..." and the session is over (the transport ends the connection).

const MAX_BULK = 512 * 1024 * 1024;
const MAX_INLINE = 64 * 1024;
const MAX_ARGS = 1024 * 1024;

const PONG = Buffer.from('+PONG\r\n');
const OK = Buffer.from('+OK\r\n');
const NIL = Buffer.from('$-1\r\n');
const CRLF = Buffer.from('\r\n');
const SYNTAX = Buffer.from('-ERR syntax error\r\n');
const CR = 13;
const LF = 10;

const NEED_MORE = null;

class ProtocolError extends Error {}

// The end of the line that starts at `from` (the index of its '\r'), or -1.
function findCrlf(buf, from) {
  let i = from;
  for (;;) {
    i = buf.indexOf(CR, i);
    if (i < 0 || i + 1 >= buf.length) return -1;
    if (buf[i + 1] === LF) return i;
    i++;
  }
}

// A decimal integer filling buf[start, end) exactly, or NaN.
function parseInteger(buf, start, end) {
  let i = start;
  let neg = false;
  if (i < end && buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  if (i === end || end - i > 18) return NaN;
  let v = 0;
  for (; i < end; i++) {
    const d = buf[i] - 0x30;
    if (d < 0 || d > 9) return NaN;
    v = v * 10 + d;
  }
  return neg ? -v : v;
}

function bulk(value) {
  return [Buffer.from(`$${value.length}\r\n`), value, CRLF];
}

// "-ERR ...\r\n" with CR and LF turned into blanks, as Redis does.
function error(text) {
  return Buffer.from(`-${text.replace(/[\r\n]/g, ' ')}\r\n`, 'latin1');
}

function wrongArgs(cmd) {
  return error(`ERR wrong number of arguments for '${cmd}' command`);
}

class Session {
  // store: a Map (latin1 key string -> Buffer) shared by every session.
  constructor(store) {
    this.store = store;
    this.pending = null; // the bytes of an incomplete command
    this.closed = false; // after a protocol error
  }

  // Runs every whole command of what has arrived; returns the replies as one
  // Buffer (null if none). After a protocol error `closed` is true, the error
  // is the last reply and the caller ends the connection.
  feed(chunk) {
    if (this.closed) return null;
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    const out = [];
    let off = 0;
    try {
      while (off < buf.length) {
        const cmd = buf[off] === 0x2a ? this.multibulk(buf, off) : this.inline(buf, off);
        if (cmd === NEED_MORE) break;
        off = cmd.next;
        if (cmd.args.length > 0) this.execute(cmd.args, out);
      }
    } catch (e) {
      if (!(e instanceof ProtocolError)) throw e;
      out.push(error(e.message));
      this.closed = true;
      this.pending = null;
      return Buffer.concat(out);
    }
    // A remainder is copied so that it does not hold on to the whole chunk;
    // a concatenation that nothing was taken from is already our own copy.
    if (off === buf.length) this.pending = null;
    else if (off === 0 && buf !== chunk) this.pending = buf;
    else this.pending = Buffer.from(buf.subarray(off));
    if (out.length === 0) return null;
    return out.length === 1 ? out[0] : Buffer.concat(out);
  }

  // "<prefix>N\r\n" at off: [N, next] or NEED_MORE; throws on a bad line.
  count(buf, off, tooBig, invalid) {
    const cr = findCrlf(buf, off);
    if (cr < 0) {
      if (buf.length - off > MAX_INLINE) throw new ProtocolError(tooBig);
      return NEED_MORE;
    }
    if (cr - off > MAX_INLINE) throw new ProtocolError(tooBig);
    const n = parseInteger(buf, off + 1, cr);
    if (Number.isNaN(n)) throw new ProtocolError(invalid);
    return [n, cr + 2];
  }

  multibulk(buf, off) {
    const head = this.count(buf, off, 'ERR Protocol error: too big mbulk count string',
      'ERR Protocol error: invalid multibulk length');
    if (head === NEED_MORE) return NEED_MORE;
    const [n] = head;
    let [, q] = head;
    if (n > MAX_ARGS) throw new ProtocolError('ERR Protocol error: invalid multibulk length');
    const args = [];
    for (let i = 0; i < n; i++) {
      if (q >= buf.length) return NEED_MORE;
      if (buf[q] !== 0x24) {
        const got = String.fromCharCode(buf[q]); // one byte, as latin1
        throw new ProtocolError(`ERR Protocol error: expected '$', got '${got}'`);
      }
      const line = this.count(buf, q, 'ERR Protocol error: too big bulk count string',
        'ERR Protocol error: invalid bulk length');
      if (line === NEED_MORE) return NEED_MORE;
      const [len, start] = line;
      if (len < 0 || len > MAX_BULK) throw new ProtocolError('ERR Protocol error: invalid bulk length');
      if (buf.length - start < len + 2) return NEED_MORE;
      args.push(buf.subarray(start, start + len));
      q = start + len + 2; // Redis does not look at the two bytes after the data either
    }
    return { args, next: q };
  }

  inline(buf, off) {
    const nl = buf.indexOf(LF, off);
    if (nl < 0 || nl - off > MAX_INLINE) {
      if (nl < 0 && buf.length - off <= MAX_INLINE) return NEED_MORE;
      throw new ProtocolError('ERR Protocol error: too big inline request');
    }
    const stop = nl > off && buf[nl - 1] === CR ? nl - 1 : nl;
    const args = [];
    let q = off;
    while (q < stop) {
      while (q < stop && (buf[q] === 0x20 || buf[q] === 0x09)) q++;
      const w = q;
      while (q < stop && buf[q] !== 0x20 && buf[q] !== 0x09) q++;
      if (q > w) args.push(buf.subarray(w, q));
    }
    return { args, next: nl + 1 };
  }

  execute(args, out) {
    const name = args[0].length <= 4 ? args[0].toString('latin1').toUpperCase() : '';
    switch (name) {
      case 'PING':
        if (args.length === 1) out.push(PONG);
        else if (args.length === 2) out.push(...bulk(args[1]));
        else out.push(wrongArgs('ping'));
        return;
      case 'ECHO':
        if (args.length === 2) out.push(...bulk(args[1]));
        else out.push(wrongArgs('echo'));
        return;
      case 'SET':
        if (args.length < 3) {
          out.push(wrongArgs('set'));
        } else if (args.length > 3) {
          out.push(SYNTAX); // Redis's options (EX, NX, ...) are not here
        } else {
          // The value is copied: the read buffer it points into is reused.
          this.store.set(args[1].toString('latin1'), Buffer.from(args[2]));
          out.push(OK);
        }
        return;
      case 'GET':
        if (args.length !== 2) {
          out.push(wrongArgs('get'));
        } else {
          const v = this.store.get(args[1].toString('latin1'));
          if (v === undefined) out.push(NIL);
          else out.push(...bulk(v));
        }
        return;
      default:
        out.push(unknownCommand(args));
    }
  }
}

// Redis's message: the name and the first arguments, 128 bytes of each at most.
function unknownCommand(args) {
  let rest = '';
  for (let i = 1; i < args.length && rest.length < 128; i++) {
    rest += `'${args[i].subarray(0, 128 - rest.length).toString('latin1')}' `;
  }
  const msg = `ERR unknown command '${args[0].subarray(0, 128).toString('latin1')}', ` +
    `with args beginning with: ${rest}`;
  return error(msg);
}

// Wires a Session to a socket of either library (the same API: Node's `net`):
// the replies of one read in one write, pause() while write() says false,
// resume() on 'drain', end() after a protocol error.
function serve(socket, store) {
  const session = new Session(store);
  socket.on('data', (chunk) => {
    const reply = session.feed(chunk);
    if (session.closed) {
      socket.pause();
      socket.end(reply);
    } else if (reply !== null && !socket.write(reply)) {
      socket.pause();
    }
  });
  socket.on('drain', () => socket.resume());
  socket.on('error', () => {}); // a client's reset ends that connection only
}

module.exports = { Session, serve, MAX_BULK, MAX_INLINE };
