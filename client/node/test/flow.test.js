'use strict';
// Backpressure both ways and timers: write() returning false and 'drain'
// with a peer that does not read, pause()/resume(), a slow reader of a pipe,
// write callbacks and bufferSize against the acks, setTimeout.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('crypto');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, once, until, delay } = require('../test-support/netcore');

let nc;
before(async () => {
  nc = await startNetcore();
  process.env.NETCORE_ENDPOINT = nc.endpoint;
});
after(async () => {
  await nc.stop();
});

// A Node server whose connections do not read until told to.
async function stalledPeer() {
  const peer = { socket: null, received: 0, hash: crypto.createHash('sha256') };
  peer.server = nodeNet.createServer((c) => {
    peer.socket = c;
    c.pause();
    c.on('data', (d) => {
      peer.received += d.length;
      peer.hash.update(d);
    });
  });
  await new Promise((r) => peer.server.listen(0, '127.0.0.1', r));
  return peer;
}

test('write() returns false to a peer that does not read; drain once it reads', async () => {
  const peer = await stalledPeer();
  const client = net.createConnection(peer.server.address().port, '127.0.0.1');
  await once(client, 'connect');
  // More than any kernel buffers on loopback can take: the acks must stop.
  const total = 64 * 1024 * 1024;
  const data = crypto.randomBytes(total);
  let drained = false;
  let callbackErr = 'not called';
  client.on('drain', () => {
    drained = true;
  });
  const ok = client.write(data, (err) => {
    callbackErr = err;
  });
  assert.strictEqual(ok, false);
  assert.ok(client.bufferSize > 0);
  await until(() => peer.socket, 'peer connection');
  // Give netcore time to hand the kernel all it will take; with the peer
  // not reading it can never take 64 MB, so nothing may drain yet.
  await delay(300);
  assert.strictEqual(drained, false);
  assert.ok(client.bufferSize > 0, 'bytes stay unacknowledged while the peer does not read');
  assert.strictEqual(callbackErr, 'not called');
  peer.socket.resume();
  await until(() => drained, 'drain');
  assert.strictEqual(client.bufferSize, 0);
  assert.strictEqual(callbackErr, null);
  await until(() => peer.received === total, 'all bytes at the peer');
  assert.strictEqual(peer.hash.digest('hex'), crypto.createHash('sha256').update(data).digest('hex'));
  assert.strictEqual(client.bytesWritten, total);
  client.end();
  await once(client, 'finish');
  client.destroy();
  peer.server.close();
});

test("write() is false only once more than netcore can take at once waits (Node's throttle)", async () => {
  const peer = await stalledPeer();
  const client = net.createConnection(peer.server.address().port, '127.0.0.1');
  await once(client, 'connect');
  // Node's rule: write() returns false when its own buffer reaches the
  // high-water mark, and bytes the kernel takes at once are not buffered.
  // Here bytes netcore can take at once are not: a loop of 1 KiB writes in
  // one tick runs far past 16 KiB before write() says false.
  const chunk = Buffer.alloc(1024, 'q');
  let n = 1;
  while (client.write(chunk)) n++;
  assert.ok(n * chunk.length > 1024 * 1024, `write() turned false after ${n} KiB`);
  assert.ok(client.bufferSize > 0);
  // Throttled: a few more writes lose nothing.
  client.write(chunk);
  client.write(chunk);
  n += 2;
  const drained = once(client, 'drain');
  await until(() => peer.socket, 'peer connection');
  peer.socket.resume();
  await drained;
  assert.strictEqual(client.bufferSize, 0);
  await until(() => peer.received === n * 1024, 'all bytes');
  client.destroy();
  peer.server.close();
});

test("a peer that stops reading: netcore's queue makes write() false; drain once it reads", async () => {
  const peer = await stalledPeer();
  const client = net.createConnection(peer.server.address().port, '127.0.0.1');
  await once(client, 'connect');
  const chunk = Buffer.alloc(4 * 1024, 'r');
  let callbacks = 0;
  let writes = 0;
  // 64 KiB a tick while write() says true: once the kernel is full,
  // netcore's acks report a queue and write() turns false.
  await new Promise((resolve) => {
    const step = () => {
      for (let i = 0; i < 16; i++) {
        writes += 1;
        if (!client.write(chunk, () => callbacks++)) return resolve();
      }
      return setImmediate(step);
    };
    step();
  });
  assert.ok(client._backlog > 0, "netcore's acks reported a queue");
  assert.ok(client.bufferSize > 0);
  const drained = once(client, 'drain');
  await until(() => peer.socket, 'peer connection');
  peer.socket.resume();
  await drained;
  await until(() => callbacks === writes, 'write callbacks');
  await until(() => peer.received === writes * chunk.length, 'all bytes');
  client.destroy();
  peer.server.close();
});

test('pause(): no data while paused, everything in order after resume()', async () => {
  let serverSock;
  const server = net.createServer((c) => {
    serverSock = c;
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
  await until(() => serverSock, 'connection');
  let paused = false;
  let dataWhilePaused = 0;
  const hash = crypto.createHash('sha256');
  let got = 0;
  serverSock.on('data', (d) => {
    if (paused) dataWhilePaused += 1;
    hash.update(d);
    got += d.length;
  });
  const data = crypto.randomBytes(4 * 1024 * 1024);
  serverSock.pause();
  paused = true;
  const bytesAtPause = serverSock.bytesRead;
  client.write(data);
  // The peer keeps sending; netcore must not read past a window.
  await delay(300);
  assert.strictEqual(dataWhilePaused, 0);
  assert.ok(serverSock.bytesRead - bytesAtPause < data.length, 'reading stopped while paused');
  paused = false;
  serverSock.resume();
  await until(() => got === data.length, 'all data after resume');
  assert.strictEqual(hash.digest('hex'), crypto.createHash('sha256').update(data).digest('hex'));
  client.destroy();
  await once(serverSock, 'close');
  await new Promise((r) => server.close(r));
});

test('pipe() between two netcore sockets carries a large stream with backpressure', async () => {
  // source -> relay server (pipes to an upstream) -> sink
  const sinkHash = crypto.createHash('sha256');
  let sinkGot = 0;
  const sink = nodeNet.createServer((c) => {
    c.on('data', (d) => {
      sinkHash.update(d);
      sinkGot += d.length;
    });
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  const relay = net.createServer((c) => {
    const up = net.createConnection(sink.address().port, '127.0.0.1');
    c.pipe(up);
  });
  await once(relay.listen(0, '127.0.0.1'), 'listening');
  const data = crypto.randomBytes(8 * 1024 * 1024);
  const src = nodeNet.createConnection(relay.address().port, '127.0.0.1');
  src.end(data);
  await until(() => sinkGot === data.length, 'all data through the relay', 40000);
  assert.strictEqual(sinkHash.digest('hex'), crypto.createHash('sha256').update(data).digest('hex'));
  relay.close();
  sink.close();
});

test('a pipe() echo with a slow reader buffers at most about one read window', async () => {
  // The conformance suite's slow_reader, in small: the peer sends fast and
  // reads slowly, so the echo's write() keeps returning false and its pipe()
  // pauses and resumes. Credit must follow what the application consumed,
  // not what arrived, or the echo's read buffer grows with the stream.
  let maxBuffered = 0;
  const server = net.createServer((c) => {
    c.on('data', () => {
      maxBuffered = Math.max(maxBuffered, c.readableLength);
    });
    c.pipe(c);
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const data = crypto.randomBytes(12 * 1024 * 1024);
  const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
  await once(client, 'connect');
  client.write(data);
  client.pause();
  const hash = crypto.createHash('sha256');
  let got = 0;
  await new Promise((resolve, reject) => {
    client.on('error', reject);
    const timer = setInterval(() => {
      const chunk = client.read(16 * 1024) || client.read();
      if (!chunk) return;
      hash.update(chunk);
      got += chunk.length;
      if (got === data.length) {
        clearInterval(timer);
        resolve();
      }
    }, 1);
  });
  assert.strictEqual(hash.digest('hex'), crypto.createHash('sha256').update(data).digest('hex'));
  // The default window is 256 KiB; the buffer may hold it plus a few
  // chunks, never megabytes.
  assert.ok(maxBuffered <= 1024 * 1024, `the echo buffered ${maxBuffered} bytes`);
  client.destroy();
  await new Promise((r) => server.close(r));
});

test('many small writes: callbacks once each, in order, after their bytes; bufferSize exact', async () => {
  const peer = await stalledPeer();
  const client = net.createConnection(peer.server.address().port, '127.0.0.1');
  await once(client, 'connect');
  // Buffers, strings with encodings, a Uint8Array and empty writes, all in
  // one tick: they share Write commands, and every callback still waits for
  // its own bytes.
  const rnd = crypto.randomBytes(3000 * 2000);
  const pieces = [];
  for (let i = 0, off = 0; i < 2000; i++) {
    const n = i % 97 === 0 ? 0 : 1 + (rnd[i] % 2999);
    if (i % 50 === 1) pieces.push({ data: rnd.subarray(off, off + n).toString('hex'), enc: 'hex', bytes: n });
    else if (i % 50 === 2) pieces.push({ data: new Uint8Array(rnd.subarray(off, off + n)), bytes: n });
    else pieces.push({ data: rnd.subarray(off, off + n), bytes: n });
    off += n;
  }
  const expected = Buffer.concat(pieces.map((p) => (p.enc ? Buffer.from(p.data, p.enc) : Buffer.from(p.data))));
  const total = expected.length;
  const order = [];
  const problems = [];
  let end = 0;
  pieces.forEach((p, i) => {
    end += p.bytes;
    const writeEnd = end;
    const cb = (err) => {
      const last = order.length > 0 ? order[order.length - 1] : -1;
      if (err) problems.push(`write ${i}: ${err.code}`);
      if (last >= i) problems.push(`write ${i} called back after ${last}`);
      // Its bytes were acknowledged: at most what follows it is pending.
      const pending = client.bufferSize;
      if (pending > total - writeEnd) problems.push(`write ${i}: bufferSize ${pending} > ${total - writeEnd}`);
      order.push(i);
    };
    if (p.enc) client.write(p.data, p.enc, cb);
    else client.write(p.data, cb);
  });
  // Nothing is acknowledged before the next tick, but netcore can take it
  // all at once: as in Node, bytes on their way to the kernel are not buffered.
  assert.strictEqual(client.bufferSize, 0);
  assert.strictEqual(client.bytesWritten, total);
  await until(() => peer.socket, 'peer connection');
  peer.socket.resume();
  let finished = -1;
  client.end(() => {
    finished = order.length;
  });
  await until(() => finished >= 0, "'finish'");
  assert.deepStrictEqual(problems, []);
  assert.strictEqual(finished, pieces.length, 'every write callback ran before finish');
  assert.strictEqual(client.bufferSize, 0);
  await until(() => peer.received === total, 'all bytes at the peer');
  assert.strictEqual(peer.hash.digest('hex'), crypto.createHash('sha256').update(expected).digest('hex'));
  client.destroy();
  peer.server.close();
});

test('destroy() with writes unacknowledged: every callback exactly once, errors after successes', async () => {
  const peer = await stalledPeer();
  const client = net.createConnection(peer.server.address().port, '127.0.0.1');
  await once(client, 'connect');
  client.on('error', () => {});
  const calls = new Array(64).fill(0);
  const results = [];
  const chunk = crypto.randomBytes(1024 * 1024);
  for (let i = 0; i < 64; i++) {
    client.write(chunk, (err) => {
      calls[i] += 1;
      results.push(err ? 'error' : 'ok');
    });
  }
  await until(() => peer.socket, 'peer connection');
  // 64 MB cannot fit in loopback buffers: most writes stay unacknowledged.
  await delay(300);
  client.destroy();
  await once(client, 'close');
  await delay(50);
  assert.deepStrictEqual(calls, new Array(64).fill(1));
  const firstError = results.indexOf('error');
  assert.ok(firstError >= 0, 'writes that never reached the kernel fail');
  assert.ok(results.slice(firstError).every((r) => r === 'error'), results.join(','));
  peer.socket.destroy();
  peer.server.close();
});

test('setTimeout fires once on idleness, keeps the socket open, 0 disables it', async () => {
  let serverSock;
  const server = net.createServer((c) => {
    serverSock = c;
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
  const got = [];
  client.on('data', (d) => got.push(d.toString()));
  await until(() => serverSock, 'connection');
  let timeouts = 0;
  serverSock.setTimeout(100, () => {
    timeouts += 1;
  });
  await until(() => timeouts === 1, 'timeout');
  assert.strictEqual(serverSock.destroyed, false);
  // Still usable after the timeout.
  serverSock.write('still open');
  await until(() => got.join('') === 'still open', 'write after timeout');
  serverSock.setTimeout(0);
  const before = timeouts;
  await delay(350);
  assert.strictEqual(timeouts, before, 'setTimeout(0) disabled it');
  // No timeout after destroy().
  serverSock.setTimeout(50);
  serverSock.on('timeout', () => {
    timeouts += 100;
  });
  serverSock.destroy();
  await once(serverSock, 'close');
  await delay(150);
  assert.ok(timeouts < 100);
  await new Promise((r) => server.close(r));
  client.destroy();
});

// The kernel's timer field ("tr") of our end of a TCP connection, from
// /proc/net/tcp: 0 = no timer, 2 = keepalive timer armed.
function tcpTimer(localPort, remotePort) {
  const hex = (n) => n.toString(16).toUpperCase().padStart(4, '0');
  for (const line of require('fs').readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length > 5 && f[1].endsWith(`:${hex(localPort)}`) && f[2].endsWith(`:${hex(remotePort)}`)) {
      return Number.parseInt(f[5].split(':')[0], 16);
    }
  }
  return null;
}

test('setKeepAlive reaches the real socket; setNoDelay is accepted', async () => {
  const nodeServer = nodeNet.createServer((c) => c.pipe(c));
  await new Promise((r) => nodeServer.listen(0, '127.0.0.1', r));
  const port = nodeServer.address().port;
  const client = net.createConnection(port, '127.0.0.1');
  await once(client, 'connect');
  client.setEncoding('utf8');
  const roundTrip = async (text) => {
    client.write(text);
    const [d] = await once(client, 'data');
    assert.strictEqual(d, text);
  };
  await roundTrip('a');
  assert.strictEqual(tcpTimer(client.localPort, port), 0, 'no keepalive timer yet');
  assert.strictEqual(client.setKeepAlive(true, 1000), client);
  assert.strictEqual(client.setNoDelay(true), client);
  await roundTrip('b'); // commands are handled in order: the options are set
  assert.strictEqual(tcpTimer(client.localPort, port), 2, 'keepalive timer armed');
  client.setKeepAlive(false);
  await roundTrip('c');
  assert.strictEqual(tcpTimer(client.localPort, port), 0, 'keepalive off again');
  client.end();
  const [hadError] = await once(client, 'close');
  assert.strictEqual(hadError, false);
  nodeServer.close();
});

test('50 clients x 5 sequential connections x 40 KB through a netcore echo server', async () => {
  const server = net.createServer((c) => c.pipe(c));
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const port = server.address().port;
  const payload = crypto.randomBytes(40 * 1024);
  let connections = 0;
  let errors = 0;
  const client = async () => {
    for (let round = 0; round < 5; round++) {
      const c = net.createConnection(port, '127.0.0.1');
      const parts = [];
      c.on('data', (d) => parts.push(d));
      c.on('error', () => errors++);
      c.end(payload);
      const [hadError] = await once(c, 'close');
      assert.strictEqual(hadError, false);
      assert.ok(Buffer.concat(parts).equals(payload));
      connections += 1;
    }
  };
  await Promise.all(Array.from({ length: 50 }, client));
  assert.strictEqual(connections, 250);
  assert.strictEqual(errors, 0);
  assert.strictEqual(server.connections, 0);
  await new Promise((r) => server.close(r));
});

// Lazy acks (PROTOCOL.md 7): writes nothing waits for are acknowledged with the
// socket's next event, not by a WriteAck message of their own; a write with a
// callback still gets its ack at once, and so does 'finish'.
test('lazy acks: no WriteAck per response; callbacks and finish still come', async () => {
  const kinds = [];
  let conn = null;
  const server = net.createServer((c) => {
    conn = c;
    const onEvent = c._onEvent;
    c._onEvent = function (kind, ...rest) {
      kinds.push(kind);
      return onEvent.call(this, kind, ...rest);
    };
    c.on('data', (d) => c.write(d)); // no callback, far below the high-water mark
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const peer = nodeNet.createConnection(server.address().port, '127.0.0.1');
  await once(peer, 'connect');
  for (let i = 0; i < 50; i++) {
    peer.write(`ping ${i}\n`);
    await once(peer, 'data');
  }
  assert.strictEqual(kinds.filter((k) => k === 'data').length, 50);
  assert.strictEqual(kinds.filter((k) => k === 'write_ack').length, 0, `events: ${kinds.join(' ')}`);
  // With a callback the ack comes at once, with no other event to carry it.
  const err = await new Promise((r) => conn.write('last\n', r));
  assert.ifError(err);
  assert.strictEqual(kinds[kinds.length - 1], 'write_ack');
  // end() waits for the End's ack: 'finish' comes while the peer stays open.
  // An orderly close both ways (the peer ends on our FIN); listening first,
  // since 'close' may follow 'finish' within the same batch of events.
  const closed = Promise.all([once(conn, 'close'), once(peer, 'close')]);
  const finished = once(conn, 'finish');
  conn.end();
  await finished;
  await closed;
  await new Promise((r) => server.close(r));
});
