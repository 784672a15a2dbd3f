'use strict';
// pipe() inside netcore (PROTOCOL.md 17, lib/pipe.js) through the real
// netcore and real TCP sockets: the bytes move inside netcore (its
// netcore_piped_bytes_total grows, the handler's payload bytes do not), with
// flat netcore memory behind a slow reader, Node's end/finish/unpipe/error
// rules, and hand-backs (unpipe(), a late 'data' listener) that lose and
// repeat nothing. Every stream carries a position-dependent byte pattern, so
// a lost, repeated or reordered byte shows. The same cases run again with
// NETCORE_PIPE_OFFLOAD=0 (the library's own pipe), where they make sense.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const nodeNet = require('net');
const { pipeline } = require('stream');
const net = require('..');
const { startNetcore, once, until, delay } = require('../test-support/netcore');

const MiB = 1024 * 1024;

let nc;
before(async () => {
  nc = await startNetcore();
  process.env.NETCORE_ENDPOINT = nc.endpoint;
});
after(async () => {
  await nc.stop();
});

// Byte i of every stream: position-dependent, so any shift shows.
function pattern(off, len) {
  const b = Buffer.allocUnsafe(len);
  for (let k = 0; k < len; k++) {
    const i = off + k;
    b[k] = (i ^ (i >>> 8) ^ (i >>> 16) ^ (i >>> 24)) & 0xff;
  }
  return b;
}

// Checks a byte stream against pattern() as it comes.
function checker(start = 0) {
  const c = { n: 0, bad: -1, start };
  c.feed = (buf) => {
    if (c.bad < 0) {
      const want = pattern(c.start + c.n, buf.length);
      if (!want.equals(buf)) {
        let k = 0;
        while (buf[k] === want[k]) k++;
        c.bad = c.n + k;
      }
    }
    c.n += buf.length;
  };
  return c;
}

// Writes pattern bytes [start, total) into a Node stream, honouring write()'s
// backpressure; resolves when all is handed over.
async function writePattern(sock, total, chunk = MiB, start = 0) {
  for (let off = start; off < total; off += chunk) {
    const n = Math.min(chunk, total - off);
    if (!sock.write(pattern(off, n))) await once(sock, 'drain');
  }
}

function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// netcore's number for a metric (summed over its samples, this process's
// handler only for the per-handler ones).
async function metric(name) {
  const st = await net.stats();
  const fam = st.families.find((f) => f.name === name);
  if (!fam) return 0;
  return fam.samples.reduce((a, s) => a + s.value, 0);
}

async function moved() {
  return { piped: await metric('netcore_piped_bytes_total'), payload: await metric('netcore_handler_payload_bytes_total') };
}

async function listen(server) {
  await once(server.listen(0, '127.0.0.1'), 'listening');
  return server.address().port;
}

const close = (server) => new Promise((resolve) => server.close(resolve));

// A Node upstream: checks what it receives against pattern(); onData(sink, sock)
// runs after every chunk, onEnd(sink, sock) at its 'end'.
async function upstream(opts = {}) {
  const sink = { conns: [], check: checker(), ended: false };
  const server = nodeNet.createServer({ allowHalfOpen: true }, (s) => {
    sink.conns.push(s);
    s.on('data', (d) => {
      sink.check.feed(d);
      if (opts.onData) opts.onData(sink, s);
    });
    s.on('end', () => {
      sink.ended = true;
      if (opts.onEnd) opts.onEnd(sink, s);
      else s.end();
    });
    s.on('error', () => {});
  });
  sink.port = await listen(server);
  sink.server = server;
  return sink;
}

async function closeSink(sink) {
  for (const s of sink.conns) s.destroy();
  await close(sink.server);
}

function withOffload(on, fn) {
  return async () => {
    const was = process.env.NETCORE_PIPE_OFFLOAD;
    if (on) delete process.env.NETCORE_PIPE_OFFLOAD;
    else process.env.NETCORE_PIPE_OFFLOAD = '0';
    try {
      await fn(on);
    } finally {
      if (was === undefined) delete process.env.NETCORE_PIPE_OFFLOAD;
      else process.env.NETCORE_PIPE_OFFLOAD = was;
    }
  };
}

test('256 MiB through c.pipe(c) and a slow reader: moved inside netcore, flat netcore memory, every byte in order, end both ways', async () => {
  const TOTAL = 256 * MiB;
  const seen = { end: false, finish: false, close: null, pipeEvent: false };
  let conn;
  const server = net.createServer((c) => {
    conn = c;
    c.on('pipe', (src) => {
      seen.pipeEvent = src === c;
    });
    c.on('end', () => {
      seen.end = true;
    });
    c.on('finish', () => {
      seen.finish = true;
    });
    c.on('close', (hadError) => {
      seen.close = hadError;
    });
    c.pipe(c);
  });
  const port = await listen(server);
  const before0 = await moved();
  const client = nodeNet.createConnection(port, '127.0.0.1');
  await once(client, 'connect');
  await until(() => conn, 'connection');
  const base = rssKiB(nc.proc.pid);
  let peak = base;
  const sampler = setInterval(() => {
    peak = Math.max(peak, rssKiB(nc.proc.pid));
  }, 20);
  const check = checker();
  let nextPause = 8 * MiB;
  client.on('data', (d) => {
    check.feed(d);
    if (check.n >= nextPause) {
      // The slow reader: stops now and then; TCP and netcore's pipe hold back.
      nextPause += 8 * MiB;
      client.pause();
      setTimeout(() => client.resume(), 25);
    }
  });
  const clientEnded = once(client, 'end');
  await writePattern(client, TOTAL);
  client.end();
  await clientEnded; // the echo's FIN: c's end ended c (netcore did, for the pipe)
  clearInterval(sampler);
  assert.strictEqual(check.bad, -1, `first wrong byte at ${check.bad}`);
  assert.strictEqual(check.n, TOTAL);
  await until(() => seen.close !== null, "server side's close");
  assert.deepStrictEqual(seen, { end: true, finish: true, close: false, pipeEvent: true });
  assert.strictEqual(conn.bytesRead, TOTAL);
  assert.strictEqual(conn.bytesWritten, TOTAL);
  const after0 = await moved();
  // The first bytes may reach the handler before the Pipe (Data in flight):
  // it writes them into c itself; the rest netcore moves.
  const piped = after0.piped - before0.piped;
  const own = after0.payload - before0.payload;
  assert.ok(own < 2 * MiB, `the handler wrote ${own} bytes itself`);
  assert.ok(piped + own >= TOTAL, `netcore piped ${piped} bytes, the handler wrote ${own}`);
  // Flat: netcore's queues hold a high-water mark, not the transfer.
  assert.ok(peak - base < 48 * 1024, `netcore grew by ${peak - base} KiB (from ${base} KiB)`);
  await close(server);
});

for (const offload of [true, false]) {
  const label = offload ? '' : ' (NETCORE_PIPE_OFFLOAD=0)';

  test(`a proxy, both directions, end propagation and byte counts${label}`, withOffload(offload, async () => {
    const UP = 6 * MiB + 123;
    const DOWN = 5 * MiB + 7;
    // The upstream checks UP, then answers DOWN and ends.
    const sink = await upstream({
      onEnd: async (_sink, s) => {
        await writePattern(s, DOWN);
        s.end();
      },
    });
    const ev = [];
    let pair;
    // Half-open: c carries DOWN after the client's end (as a Node proxy must).
    const server = net.createServer({ allowHalfOpen: true }, (c) => {
      const up = net.createConnection(sink.port, '127.0.0.1');
      pair = { c, up };
      for (const [name, s] of [['c', c], ['up', up]]) {
        s.on('end', () => ev.push(`${name}:end`));
        s.on('finish', () => ev.push(`${name}:finish`));
        s.on('close', () => ev.push(`${name}:close`));
        s.on('unpipe', () => ev.push(`${name}:unpipe`));
      }
      c.pipe(up);
      up.pipe(c);
    });
    const port = await listen(server);
    const before0 = await moved();
    const client = nodeNet.createConnection(port, '127.0.0.1');
    const check = checker();
    client.on('data', check.feed);
    const ended = once(client, 'end');
    await once(client, 'connect');
    await writePattern(client, UP, 256 * 1024);
    client.end();
    await ended;
    assert.strictEqual(sink.check.bad, -1);
    assert.strictEqual(sink.check.n, UP);
    assert.strictEqual(check.bad, -1);
    assert.strictEqual(check.n, DOWN);
    await until(() => ev.includes('c:close') && ev.includes('up:close'), 'both closed');
    for (const e of ['c:end', 'up:finish', 'up:end', 'c:finish', 'up:unpipe', 'c:unpipe']) assert.ok(ev.includes(e), `${e} in ${ev}`);
    assert.ok(ev.indexOf('c:end') < ev.indexOf('up:finish'));
    assert.ok(ev.indexOf('up:end') < ev.indexOf('c:finish'));
    assert.strictEqual(pair.c.bytesRead, UP);
    assert.strictEqual(pair.up.bytesWritten, UP);
    assert.strictEqual(pair.up.bytesRead, DOWN);
    assert.strictEqual(pair.c.bytesWritten, DOWN);
    const after0 = await moved();
    if (offload) {
      assert.ok(after0.payload - before0.payload < 2 * MiB, `handler wrote ${after0.payload - before0.payload}`);
      assert.ok(after0.piped - before0.piped + after0.payload - before0.payload >= UP + DOWN);
    } else {
      assert.strictEqual(after0.piped - before0.piped, 0);
      assert.ok(after0.payload - before0.payload >= UP + DOWN);
    }
    await close(server);
    await closeSink(sink);
  }));

  test(`{end: false} leaves the destination open: the handler writes after the source's end${label}`, withOffload(offload, async () => {
    const N = 3 * MiB + 5;
    const sink = await upstream();
    const server = net.createServer((c) => {
      const up = net.createConnection(sink.port, '127.0.0.1');
      c.pipe(up, { end: false });
      c.on('end', () => {
        // Still writable: its own end comes from us.
        assert.strictEqual(up.writableEnded, false);
        up.end(pattern(N, 1000));
      });
      up.resume();
    });
    const port = await listen(server);
    const client = nodeNet.createConnection(port, '127.0.0.1');
    await once(client, 'connect');
    client.resume();
    await writePattern(client, N, 128 * 1024);
    client.end();
    await until(() => sink.ended, "upstream's end");
    assert.strictEqual(sink.check.bad, -1);
    assert.strictEqual(sink.check.n, N + 1000);
    client.destroy();
    await close(server);
    await closeSink(sink);
  }));

  test(`unpipe() mid-stream hands the rest to the handler: nothing lost or repeated${label}`, withOffload(offload, async () => {
    const N = 16 * MiB;
    const rest = { chunks: [], n: 0 };
    let unpiped = false;
    let src;
    let unpipeEvent = null;
    const sink = await upstream({
      onData: (s) => {
        if (!unpiped && s.check.n >= 2 * MiB) {
          unpiped = true;
          src.unpipe();
          setTimeout(() => {
            // After unpipe() the source is paused (Node): what follows comes on resume.
            src.on('data', (d) => {
              rest.chunks.push(d);
              rest.n += d.length;
            });
            src.resume();
          }, 50);
        }
      },
    });
    const server = net.createServer((c) => {
      src = c;
      const up = net.createConnection(sink.port, '127.0.0.1');
      up.on('unpipe', (s) => {
        unpipeEvent = s === c;
      });
      c.pipe(up);
    });
    const port = await listen(server);
    const client = nodeNet.createConnection(port, '127.0.0.1');
    await once(client, 'connect');
    // The second half leaves only once the stream was handed back, so that
    // part is the handler's however much of the first the kernel's buffers held.
    await writePattern(client, N / 2, 256 * 1024);
    await until(() => unpiped, 'the unpipe() mid-stream');
    await writePattern(client, N, 256 * 1024, N / 2);
    client.end();
    await until(() => rest.n + sink.check.n >= N, `every byte (pipe ${sink.check.n}, handler ${rest.n}, read ${src.bytesRead})`);
    await delay(50);
    assert.strictEqual(unpipeEvent, true);
    assert.strictEqual(sink.check.bad, -1);
    assert.strictEqual(sink.check.n + rest.n, N);
    assert.ok(Buffer.concat(rest.chunks).equals(pattern(sink.check.n, rest.n)), "the handler's part follows the pipe's");
    assert.ok(sink.check.n >= 2 * MiB && rest.n > 0);
    assert.strictEqual(src.bytesRead, N);
    client.destroy();
    await close(server);
    await closeSink(sink);
  }));

  test(`a late 'data' listener mid-stream sees the rest while the pipe goes on${label}`, withOffload(offload, async () => {
    const N = 16 * MiB;
    const late = { chunks: [], n: 0 };
    let src;
    let added = false;
    const sink = await upstream({
      onData: (s) => {
        if (!added && s.check.n >= 2 * MiB) {
          added = true;
          src.on('data', (d) => {
            late.chunks.push(d);
            late.n += d.length;
          });
        }
      },
    });
    const server = net.createServer((c) => {
      src = c;
      c.pipe(net.createConnection(sink.port, '127.0.0.1'));
    });
    const port = await listen(server);
    const client = nodeNet.createConnection(port, '127.0.0.1');
    await once(client, 'connect');
    await writePattern(client, N / 2, 256 * 1024); // the second half after the listener, as above
    await until(() => added, "the late 'data' listener");
    await writePattern(client, N, 256 * 1024, N / 2);
    client.end();
    await until(() => sink.ended, "upstream's end");
    assert.strictEqual(sink.check.bad, -1);
    assert.strictEqual(sink.check.n, N);
    assert.ok(late.n > 0 && late.n <= N - 2 * MiB, `late listener got ${late.n}`);
    assert.ok(Buffer.concat(late.chunks).equals(pattern(N - late.n, late.n)), 'the late part is the tail, once');
    await close(server);
    await closeSink(sink);
  }));

  test(`the destination's peer resets it: 'error' on it, 'unpipe', the source stays usable${label}`, withOffload(offload, async () => {
    const sink = await upstream({
      onData: (s, sock) => {
        if (s.check.n >= MiB && !sock.destroyed) sock.resetAndDestroy();
      },
    });
    let src;
    let up;
    let upError = null;
    let unpipeEvent = false;
    const tail = [];
    const server = net.createServer((c) => {
      src = c;
      up = net.createConnection(sink.port, '127.0.0.1');
      up.on('error', (e) => {
        upError = e;
      });
      up.on('unpipe', () => {
        unpipeEvent = true;
      });
      c.pipe(up);
    });
    const port = await listen(server);
    const client = nodeNet.createConnection(port, '127.0.0.1');
    client.on('error', () => {});
    await once(client, 'connect');
    // Keep writing until the reset reached the handler.
    let off = 0;
    while (!upError && off < 64 * MiB) {
      if (!client.write(pattern(off, 64 * 1024))) await Promise.race([once(client, 'drain'), delay(100)]);
      off += 64 * 1024;
    }
    await until(() => upError && unpipeEvent, "the destination's error");
    assert.ok(['ECONNRESET', 'EPIPE'].includes(upError.code), upError.code);
    assert.strictEqual(src.destroyed, false);
    // The source was unpiped and paused (Node): its data is the handler's again.
    src.on('data', (d) => tail.push(d));
    src.resume();
    client.write('after the reset');
    await until(() => Buffer.concat(tail).toString('latin1').endsWith('after the reset'), 'data after the reset');
    client.destroy();
    await close(server);
    await closeSink(sink);
  }));
}

test('stream.pipeline() over two netcore sockets runs inside netcore and completes', async () => {
  const N = 4 * MiB + 1;
  const sink = await upstream();
  let done = null;
  const server = net.createServer((c) => {
    pipeline(c, net.createConnection(sink.port, '127.0.0.1'), (err) => {
      done = err || 'ok';
    });
  });
  const port = await listen(server);
  const before0 = await moved();
  const client = nodeNet.createConnection(port, '127.0.0.1');
  client.resume();
  await once(client, 'connect');
  await writePattern(client, N, 256 * 1024);
  client.end();
  await until(() => sink.ended && done !== null, 'pipeline done');
  assert.strictEqual(done, 'ok');
  assert.strictEqual(sink.check.bad, -1);
  assert.strictEqual(sink.check.n, N);
  const after0 = await moved();
  assert.ok(after0.piped - before0.piped >= N - 2 * MiB);
  client.destroy();
  await close(server);
  await closeSink(sink);
});

test("setEncoding() after pipe() hands the stream back: the pipe writes the decoded text", async () => {
  const sink = await upstream();
  let c0;
  const server = net.createServer((c) => {
    c0 = c;
    const up = net.createConnection(sink.port, '127.0.0.1');
    up.setDefaultEncoding('latin1'); // the pipe writes latin1 text back as the same bytes
    c.pipe(up);
  });
  const port = await listen(server);
  const client = nodeNet.createConnection(port, '127.0.0.1');
  await once(client, 'connect');
  await writePattern(client, MiB, 64 * 1024);
  await until(() => sink.check.n >= MiB, 'first MiB');
  c0.setEncoding('latin1');
  client.write(pattern(MiB, MiB));
  client.end();
  await until(() => sink.ended, "upstream's end");
  assert.strictEqual(sink.check.bad, -1);
  assert.strictEqual(sink.check.n, 2 * MiB);
  await close(server);
  await closeSink(sink);
});
