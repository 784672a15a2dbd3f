'use strict';
// Errors carry Node's codes: ECONNREFUSED, ENOENT, ENOTFOUND, EPIPE after
// end(), ERR_SOCKET_BAD_PORT; 'error' is followed by 'close'(true).

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('path');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, once, freePort } = require('../test-support/netcore');

let nc;
before(async () => {
  nc = await startNetcore();
  process.env.NETCORE_ENDPOINT = nc.endpoint;
});
after(async () => {
  await nc.stop();
});

// Connects and returns { err, hadError, connected } once 'close' fired.
async function failedConnect(...args) {
  const sock = net.createConnection(...args);
  let connected = false;
  let err = null;
  const order = [];
  sock.on('connect', () => {
    connected = true;
  });
  sock.on('error', (e) => {
    err = e;
    order.push('error');
  });
  const [hadError] = await new Promise((resolve) => sock.on('close', (...a) => resolve(a)));
  order.push('close');
  return { err, hadError, connected, order };
}

test('connect to a port nobody listens on: ECONNREFUSED, then close(true)', async () => {
  const port = await freePort();
  const r = await failedConnect(port, '127.0.0.1');
  assert.strictEqual(r.connected, false);
  assert.strictEqual(r.err.code, 'ECONNREFUSED');
  assert.strictEqual(r.err.syscall, 'connect');
  assert.strictEqual(r.err.address, '127.0.0.1');
  assert.strictEqual(r.err.port, port);
  assert.strictEqual(r.err.message, `connect ECONNREFUSED 127.0.0.1:${port}`);
  assert.strictEqual(r.hadError, true);
  assert.deepStrictEqual(r.order, ['error', 'close']);
});

test('connect to a missing UNIX path: ENOENT', async () => {
  const r = await failedConnect(path.join(nc.dir, 'nobody-here.sock'));
  assert.strictEqual(r.err.code, 'ENOENT');
  assert.strictEqual(r.hadError, true);
});

test('an unresolvable host name: ENOTFOUND, asynchronously', async () => {
  // A 64-byte label is not a valid DNS name: the resolver fails it without
  // sending a query anywhere.
  const host = `${'a'.repeat(64)}.invalid`;
  let sync = true;
  const p = failedConnect(80, host);
  sync = false;
  const r = await p;
  assert.strictEqual(sync, false);
  assert.strictEqual(r.err.code, 'ENOTFOUND');
  assert.strictEqual(r.err.syscall, 'getaddrinfo');
  assert.strictEqual(r.err.hostname, host);
  assert.strictEqual(r.hadError, true);
});

test('createConnection(port), (port, "localhost"), with and without callback', async () => {
  const server = nodeNet.createServer((c) => c.end());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address();
  let cbs = 0;
  const socks = [
    net.createConnection(port),
    net.createConnection(port, 'localhost'),
    net.createConnection(port, () => cbs++),
    net.createConnection(port, 'localhost', () => cbs++),
    net.connect({ port, host: '127.0.0.1' }, () => cbs++),
  ];
  await Promise.all(socks.map((s) => once(s, 'connect')));
  assert.strictEqual(cbs, 3);
  for (const s of socks) {
    s.resume();
    assert.strictEqual(s.remotePort, port);
  }
  await Promise.all(socks.map((s) => once(s, 'close')));
  server.close();
});

test('write after our own end(): false, ERR_STREAM_WRITE_AFTER_END to the callback and as error, asynchronously', async () => {
  const server = nodeNet.createServer((c) => c.resume());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.createConnection(server.address().port, '127.0.0.1');
  await once(sock, 'connect');
  sock.end('done');
  let cbErr = null;
  let errorEvent = null;
  sock.on('error', (e) => {
    errorEvent = e;
  });
  const ok = sock.write('too late', (e) => {
    cbErr = e;
  });
  assert.strictEqual(ok, false);
  assert.strictEqual(errorEvent, null, "'error' is not emitted synchronously");
  const hadError = await new Promise((resolve) => sock.once('close', resolve));
  // Node's own net does the same (its Writable's error, 'write after end').
  assert.strictEqual(cbErr.code, 'ERR_STREAM_WRITE_AFTER_END');
  assert.strictEqual(errorEvent.code, 'ERR_STREAM_WRITE_AFTER_END');
  assert.strictEqual(errorEvent.message, 'write after end');
  assert.strictEqual(hadError, true);
  server.close();
});

test('peer ended and we (not half-open) write: error, and the callback still fires', async () => {
  const server = nodeNet.createServer((c) => c.end());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.createConnection(server.address().port, '127.0.0.1');
  let cbErr = 'not called';
  let errorEvent = null;
  let endedBeforeWrite = null;
  sock.on('error', (e) => {
    errorEvent = e;
  });
  const closed = new Promise((resolve) => sock.once('close', resolve));
  sock.on('end', () => {
    // Node ends our side in a tick queued right after 'end'; write after it.
    process.nextTick(() =>
      process.nextTick(() => {
        endedBeforeWrite = sock.writableEnded;
        sock.write('x', (e) => {
          cbErr = e;
        });
      }),
    );
  });
  sock.resume();
  const hadError = await closed;
  assert.strictEqual(endedBeforeWrite, true);
  assert.ok(errorEvent, "'error' emitted");
  assert.strictEqual(errorEvent.code, 'EPIPE');
  assert.ok(cbErr && cbErr.code === 'EPIPE');
  assert.strictEqual(cbErr.message, 'This socket has been ended by the other party'); // Node's text
  assert.strictEqual(hadError, true);
  server.close();
});

test('bad ports throw ERR_SOCKET_BAD_PORT', () => {
  assert.throws(() => net.createConnection(70000, '127.0.0.1'), { code: 'ERR_SOCKET_BAD_PORT' });
  assert.throws(() => net.createConnection(-5), { code: 'ERR_SOCKET_BAD_PORT' });
});

test('destroy() before the connection completes: close, no connect, no error', async () => {
  const server = nodeNet.createServer((c) => c.destroy());
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sock = net.createConnection(server.address().port, '127.0.0.1');
  let connected = false;
  sock.on('connect', () => {
    connected = true;
  });
  sock.destroy();
  const [hadError] = await once(sock, 'close');
  assert.strictEqual(hadError, false);
  assert.strictEqual(connected, false);
  server.close();
});
