'use strict';
// Node's own net semantics where our model allows them (issue 13): each test
// states what require('net') does and checks that this library does it too.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const os = require('os');
const path = require('path');
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

const closeServer = (s) => new Promise((r) => s.close(r));

test('listen(0) without a host: address() and listening at once; connect to that port works', async () => {
  const server = net.createServer((c) => c.end('hi'));
  server.listen(0);
  const listened = once(server, 'listening');
  assert.strictEqual(server.listening, true);
  const a = server.address();
  const probe = nodeNet.createServer().listen(0);
  assert.strictEqual(a.family, probe.address().family); // '::' dual-stack, as Node's own
  assert.strictEqual(a.address, probe.address().address);
  probe.close();
  assert.ok(a.port > 0);
  const c = net.createConnection(a.port, '127.0.0.1');
  c.setEncoding('utf8');
  let got = '';
  c.on('data', (d) => {
    got += d;
  });
  await once(c, 'close');
  assert.strictEqual(got, 'hi');
  await listened;
  assert.deepStrictEqual(server.address(), a);
  await closeServer(server);
});

test('listen(path): address() is the path at once', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-sem-'));
  const p = path.join(dir, 's.sock');
  const server = net.createServer();
  server.listen(p);
  const listened = once(server, 'listening');
  assert.strictEqual(server.address(), p);
  assert.strictEqual(server.listening, true);
  await listened;
  await closeServer(server);
  fs.rmSync(dir, { recursive: true, force: true });
});

test("a socket connects again from its own 'close'; its counters start over", async () => {
  const server = nodeNet.createServer((c) => {
    c.on('data', () => c.end('z'));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const c = new net.Socket();
  const seen = [];
  let rounds = 0;
  c.on('data', () => {});
  c.on('connect', () => {
    seen.push(`connect ${c.bytesWritten} ${c.bytesRead}`);
    c.write('abc');
  });
  const done = new Promise((resolve) => {
    c.on('close', (hadError) => {
      seen.push(`close ${hadError} ${c.bytesWritten} ${c.bytesRead}`);
      rounds += 1;
      if (rounds < 3) c.connect(server.address().port, '127.0.0.1');
      else resolve();
    });
  });
  c.connect(server.address().port, '127.0.0.1');
  await done;
  assert.deepStrictEqual(seen, ['connect 0 0', 'close false 3 1', 'connect 0 0', 'close false 3 1', 'connect 0 0', 'close false 3 1']);
  server.close();
});

test('close() then listen() at once: close and listening both follow, and it accepts', async () => {
  const server = net.createServer((c) => c.end('again'));
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const events = [];
  server.on('close', () => events.push('close'));
  server.on('listening', () => events.push('listening'));
  server.close();
  server.listen(0, '127.0.0.1');
  await until(() => events.length === 2, "'close' and 'listening'");
  assert.deepStrictEqual(events.sort(), ['close', 'listening']);
  assert.strictEqual(server.listening, true);
  const c = nodeNet.createConnection(server.address().port, '127.0.0.1');
  let got = '';
  c.on('data', (d) => {
    got += d;
  });
  await once(c, 'end');
  assert.strictEqual(got, 'again');
  await closeServer(server);
});

test("maxConnections set after listen() but before 'listening' applies", async () => {
  const server = net.createServer((c) => c.resume());
  server.listen(0, '127.0.0.1');
  server.maxConnections = 1;
  await once(server, 'listening');
  const { port } = server.address();
  const first = nodeNet.createConnection(port, '127.0.0.1');
  await until(() => server.connections === 1, 'first connection');
  const second = nodeNet.createConnection(port, '127.0.0.1');
  second.on('error', () => {});
  second.resume();
  await once(second, 'close'); // closed by netcore at once
  assert.strictEqual(server.connections, 1);
  first.destroy();
  await closeServer(server);
});

// The peer resets at once (at accept) and 10 ms later. Paused before it
// connected, the socket never reads, so netcore hears of the reset only from
// the End, as Node does: the Pause goes with the Connect (a Pause sent only at
// 'connect' let netcore read the reset first: 'error' ECONNRESET).
for (const after of [0, 10]) {
  test(`end() on a connection the peer already reset (${after} ms after accept): 'finish', 'end', 'close'(false), no error`, async () => {
    const server = nodeNet.createServer((c) => setTimeout(() => c.resetAndDestroy(), after));
    await new Promise((r) => server.listen(0, '127.0.0.1', r));
    const c = net.createConnection(server.address().port, '127.0.0.1');
    c.pause(); // netcore does not read, so it learns of the reset only from End
    const seen = [];
    const closed = once(c, 'close');
    c.on('error', (e) => seen.push(`error ${e.code}`));
    c.on('finish', () => {
      seen.push('finish');
      c.resume();
    });
    c.on('end', () => seen.push('end'));
    await once(c, 'connect');
    await delay(100);
    c.end();
    const [hadError] = await closed;
    assert.deepStrictEqual(seen, ['finish', 'end']);
    assert.strictEqual(hadError, false);
    server.close();
  });
}

test('highWaterMark: 0 is kept: every write() is false, drain follows', async () => {
  const server = nodeNet.createServer((c) => c.resume());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const c = new net.Socket({ highWaterMark: 0 });
  assert.strictEqual(c.writableHighWaterMark, 0);
  assert.strictEqual(c.readableHighWaterMark, 0);
  c.connect(server.address().port, '127.0.0.1');
  await once(c, 'connect');
  assert.strictEqual(c.write('x'), false);
  await once(c, 'drain');
  c.destroy();
  server.close();
});

test('a write() within the high-water mark is true even before its ack', async () => {
  const server = nodeNet.createServer((c) => c.resume());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const c = net.createConnection(server.address().port, '127.0.0.1');
  await once(c, 'connect');
  const piece = Buffer.alloc(8 * 1024);
  const results = [];
  for (let i = 0; i < 8; i++) results.push(c.write(piece)); // 64 KiB in one tick
  assert.deepStrictEqual(results, Array(8).fill(true));
  c.destroy();
  server.close();
});

test('net.Server(), net.Socket(), net.Stream() work without new', () => {
  const s = net.Server();
  assert.ok(s instanceof net.Server);
  const k = net.Socket();
  assert.ok(k instanceof net.Socket);
  assert.ok(net.Stream() instanceof net.Socket);
  assert.ok(new net.Socket() instanceof net.Stream);
});

test('argument checks throw what Node throws', () => {
  const s = new net.Socket();
  for (const bad of ['100', true]) {
    assert.throws(() => s.setTimeout(bad), { code: 'ERR_INVALID_ARG_TYPE', name: 'TypeError' });
  }
  assert.throws(() => s.connect(), { code: 'ERR_MISSING_ARGS', name: 'TypeError' });
  assert.throws(() => net.connect({ port: 1, localAddress: 'foobar' }), {
    code: 'ERR_INVALID_IP_ADDRESS',
    message: 'Invalid IP address: foobar',
  });
  s.setTimeout(250);
  assert.strictEqual(s.timeout, 250);
  s.timeout = 7; // a plain property, as in Node
  assert.strictEqual(s.timeout, 7);
  s.destroy();
});

test("listen({ path, readableAll, writableAll }) opens the socket file's mode to everyone", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-sem-'));
  const p = path.join(dir, 'all.sock');
  const server = net.createServer();
  await once(server.listen({ path: p, readableAll: true, writableAll: true }), 'listening');
  assert.strictEqual(fs.statSync(p).mode & 0o666, 0o666);
  await closeServer(server);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a write callback of a socket destroyed before connecting: ERR_SOCKET_CLOSED_BEFORE_CONNECTION', async () => {
  const server = nodeNet.createServer((c) => c.resume());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const c = net.createConnection(server.address().port, '127.0.0.1');
  const err = new Promise((resolve) => c.write('early', resolve));
  c.destroy();
  const e = await err;
  assert.strictEqual(e.code, 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION');
  assert.strictEqual(e.message, 'Socket closed before the connection was established');
  server.close();
});

test("a relative UNIX path is the handler's, resolved against its working directory", async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-sem-'));
  const cwd = process.cwd();
  process.chdir(dir);
  try {
    const server = net.createServer((c) => c.end('rel'));
    await once(server.listen('rel.sock'), 'listening');
    assert.strictEqual(server.address(), 'rel.sock'); // as given, as Node's
    assert.ok(fs.existsSync(path.join(dir, 'rel.sock')));
    const c = net.createConnection('rel.sock');
    let got = '';
    c.on('data', (d) => {
      got += d;
    });
    await once(c, 'close');
    assert.strictEqual(got, 'rel');
    await closeServer(server);
  } finally {
    process.chdir(cwd);
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("socket.timeout: setTimeout() stores it (even a bad value); assigning it applies nothing, as Node's", async () => {
  const server = nodeNet.createServer((c) => c.resume());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const c = net.createConnection(server.address().port, '127.0.0.1');
  await once(c, 'connect');
  assert.strictEqual(c.timeout, undefined);
  assert.throws(() => c.setTimeout('40'), { code: 'ERR_INVALID_ARG_TYPE' });
  assert.strictEqual(c.timeout, '40'); // Node stores msecs before checking it
  let timeouts = 0;
  c.on('timeout', () => {
    timeouts += 1;
  });
  c.timeout = 30; // only the property: no idle timer starts
  await delay(250);
  assert.strictEqual(timeouts, 0);
  assert.strictEqual(c.timeout, 30);
  c.setTimeout(30);
  await until(() => timeouts > 0);
  c.destroy();
  await once(c, 'close');
  c.setTimeout(99); // destroyed: ignored, as Node's
  assert.strictEqual(c.timeout, 30);
  server.close();
});
