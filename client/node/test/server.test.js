'use strict';
// net.Server over netcore: listen forms, address(), EADDRINUSE and retry,
// connections and maxConnections, close() semantics, UNIX paths.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, once, until, delay, freePort } = require('../test-support/netcore');

let nc;
before(async () => {
  nc = await startNetcore();
  process.env.NETCORE_ENDPOINT = nc.endpoint;
});
after(async () => {
  await nc.stop();
});

const close = (server) => new Promise((resolve) => server.close(resolve));

test('listen() with no port: OS-assigned port, callback runs', async () => {
  const server = net.createServer();
  let port;
  await new Promise((resolve) =>
    server.listen(() => {
      port = server.address().port;
      resolve();
    }),
  );
  assert.ok(port > 0);
  assert.strictEqual(server.listening, true);
  // Node's any-address: '::' dual-stack where the host has IPv6, so it is
  // reachable on 127.0.0.1 too.
  const probe = nodeNet.createServer().listen(0);
  assert.strictEqual(server.address().family, probe.address().family);
  assert.strictEqual(server.address().address, probe.address().address);
  probe.close();
  const c = nodeNet.createConnection(port, '127.0.0.1');
  await once(c, 'connect');
  c.destroy();
  await close(server);
  assert.strictEqual(server.address(), null);
});

test('listen(port, host) reports that port; the callback sees it', async () => {
  const p = await freePort();
  const server = net.createServer();
  const [seen] = await new Promise((resolve) => server.listen(p, '127.0.0.1', () => resolve([server.address()])));
  assert.deepStrictEqual(seen, { address: '127.0.0.1', family: 'IPv4', port: p });
  await close(server);
});

test('listen(port) as a numeric string and listen({port, host})', async () => {
  const p = await freePort();
  const a = net.createServer();
  await once(a.listen(String(p), '127.0.0.1'), 'listening');
  assert.strictEqual(a.address().port, p);
  await close(a);
  const b = net.createServer();
  await once(b.listen({ port: 0, host: '127.0.0.1' }), 'listening');
  assert.ok(b.address().port > 0);
  await close(b);
});

test('EADDRINUSE: error, no listening callback, then listen elsewhere works', async () => {
  const first = net.createServer();
  await once(first.listen(0, '127.0.0.1'), 'listening');
  const port = first.address().port;
  const second = net.createServer();
  let cbRuns = 0;
  second.listen(port, '127.0.0.1', () => {
    cbRuns += 1;
  });
  const [err] = await once(second, 'error');
  assert.strictEqual(err.code, 'EADDRINUSE');
  assert.strictEqual(err.syscall, 'listen');
  assert.strictEqual(err.port, port);
  assert.strictEqual(second.listening, false);
  await once(second.listen(0, '127.0.0.1'), 'listening');
  assert.notStrictEqual(second.address().port, port);
  assert.strictEqual(cbRuns, 0, 'the failed listen callback never runs');
  // A port held by a plain Node server is just as taken.
  const nodeServer = nodeNet.createServer();
  await new Promise((r) => nodeServer.listen(0, '127.0.0.1', r));
  const third = net.createServer();
  third.listen(nodeServer.address().port, '127.0.0.1');
  const [err3] = await once(third, 'error');
  assert.strictEqual(err3.code, 'EADDRINUSE');
  nodeServer.close();
  await close(first);
  await close(second);
});

test('listen on an address this host does not have: EADDRNOTAVAIL', async () => {
  const server = net.createServer();
  server.listen(0, '1.1.1.1');
  const [err] = await once(server, 'error');
  assert.strictEqual(err.code, 'EADDRNOTAVAIL');
});

test('listen twice without closing throws ERR_SERVER_ALREADY_LISTEN', async () => {
  const server = net.createServer();
  await once(server.listen(0, '127.0.0.1'), 'listening');
  assert.throws(() => server.listen(0), { code: 'ERR_SERVER_ALREADY_LISTEN' });
  await close(server);
});

test('a bad port throws ERR_SOCKET_BAD_PORT synchronously', () => {
  assert.throws(() => net.createServer().listen(65536), { code: 'ERR_SOCKET_BAD_PORT', name: 'RangeError' });
  assert.throws(() => net.createServer().listen(-1), { code: 'ERR_SOCKET_BAD_PORT' });
});

test('UNIX path: address() is the path, close() unlinks it, a regular file is an error', async () => {
  const p = path.join(nc.dir, 'srv.sock');
  const server = net.createServer((c) => c.end('unix hi'));
  await once(server.listen(p), 'listening');
  assert.strictEqual(server.address(), p);
  const c = nodeNet.createConnection(p);
  let got = '';
  c.on('data', (d) => {
    got += d;
  });
  await once(c, 'end');
  assert.strictEqual(got, 'unix hi');
  await close(server);
  assert.strictEqual(fs.existsSync(p), false);

  const file = path.join(nc.dir, 'plain-file');
  fs.writeFileSync(file, 'not a socket');
  const s2 = net.createServer();
  s2.listen(file);
  const [err] = await once(s2, 'error');
  assert.ok(err.code, 'the error has a code');
  assert.ok(err.message.includes(file), `the message names the path: ${err.message}`);
  assert.ok(fs.existsSync(file), 'the file is left alone');
});

// PROTOCOL.md 1.2: a UNIX path that is not UTF-8 goes as path_bytes and comes
// back as address_bytes, which the library decodes as Node decodes paths.
test('UNIX paths that are not UTF-8: Buffer paths, address_bytes, a peer bound to one', async () => {
  const dirBuf = Buffer.from(nc.dir);
  const p = Buffer.concat([dirBuf, Buffer.from('/srv-'), Buffer.from([0xff, 0xfe]), Buffer.from('.sock')]);
  const server = net.createServer((c) => {
    c.write('hi ');
    c.pipe(c);
  });
  await once(server.listen(p), 'listening');
  assert.strictEqual(server.address(), p.toString('utf8'));
  assert.ok(server.address().includes('\ufffd\ufffd'), 'U+FFFD for each invalid byte');
  assert.ok(fs.existsSync(p), 'the exact bytes were bound');

  // Our own library connects to the Buffer path (path_bytes).
  const c = net.createConnection(p);
  await once(c, 'connect');
  c.end('own');
  let got = '';
  c.on('data', (d) => {
    got += d;
  });
  await once(c, 'end');
  assert.strictEqual(got, 'hi own');

  // A peer bound to a non-UTF-8 path (Node's net cannot bind one: Python does).
  const peerPath = Buffer.concat([dirBuf, Buffer.from('/peer-'), Buffer.from([0xc0, 0x80])]);
  const script = [
    'import socket, sys',
    's = socket.socket(socket.AF_UNIX)',
    's.bind(bytes.fromhex(sys.argv[1]))',
    's.connect(bytes.fromhex(sys.argv[2]))',
    's.sendall(b"peer")',
    's.shutdown(socket.SHUT_WR)',
    'out = b""',
    'while True:',
    '    d = s.recv(100)',
    '    if not d: break',
    '    out += d',
    'sys.stdout.write(out.decode())',
  ].join('\n');
  const py = require('child_process').spawn('/usr/bin/python3', ['-c', script, peerPath.toString('hex'), p.toString('hex')]);
  let out = '';
  py.stdout.on('data', (d) => {
    out += d;
  });
  const [status] = await once(py, 'exit');
  assert.strictEqual(status, 0);
  assert.strictEqual(out, 'hi peer');
  fs.unlinkSync(peerPath);
  await close(server);
  assert.strictEqual(fs.existsSync(p), false, 'close() unlinked the exact path');

  // An error naming such a path is readable text.
  const c2 = net.createConnection(p);
  const [err] = await once(c2, 'error');
  assert.strictEqual(err.code, 'ENOENT');
  assert.strictEqual(err.address, p.toString('utf8'));
  assert.ok(err.message.includes(p.toString('utf8')), `the message shows the path: ${err.message}`);
});

test('address_bytes, when present, is the path; address is only its display form', () => {
  const { nodeAddress, pathEndpoint } = require('../lib/protocol');
  const bytes = Buffer.from([0x2f, 0x74, 0xff, 0xc3, 0xa9]); // "/t", an invalid byte, "é"
  const a = nodeAddress({ family: 3, address: 'display form', port: 0, address_bytes: bytes });
  assert.deepStrictEqual(a, { address: '/t\ufffd\u00e9', family: 'unix', port: undefined });
  assert.strictEqual(nodeAddress({ family: 3, address: '/plain', address_bytes: Buffer.alloc(0) }).address, '/plain');
  assert.deepStrictEqual(pathEndpoint(bytes), { path_bytes: bytes });
  assert.deepStrictEqual(pathEndpoint(Buffer.from('/t\u00e9')), { path: '/t\u00e9' });
  assert.deepStrictEqual(pathEndpoint('/s'), { path: '/s' });
});

test('connections counts live connections; destroying twice lowers it once', async () => {
  const socks = [];
  const server = net.createServer((c) => socks.push(c));
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const port = server.address().port;
  const clients = [nodeNet.createConnection(port, '127.0.0.1'), nodeNet.createConnection(port, '127.0.0.1')];
  await until(() => socks.length === 2, 'two connections');
  assert.strictEqual(server.connections, 2);
  socks[0].destroy();
  socks[0].destroy();
  assert.strictEqual(server.connections, 1);
  await once(socks[0], 'close');
  assert.strictEqual(server.connections, 1);
  const n = await new Promise((resolve, reject) => server.getConnections((e, v) => (e ? reject(e) : resolve(v))));
  assert.strictEqual(n, 1);
  clients.forEach((c) => c.destroy());
  await close(server);
  assert.strictEqual(server.connections, 0);
});

test('maxConnections = N: N served, the rest closed at once without data', async () => {
  const served = [];
  const server = net.createServer((c) => {
    served.push(c);
    c.write('served');
  });
  server.maxConnections = 2;
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const port = server.address().port;
  const results = [];
  const clients = [];
  for (let i = 0; i < 4; i++) {
    const c = nodeNet.createConnection(port, '127.0.0.1');
    const r = { data: '', closed: false };
    c.on('data', (d) => {
      r.data += d;
    });
    c.on('error', () => {});
    c.on('close', () => {
      r.closed = true;
    });
    results.push(r);
    clients.push(c);
    // One at a time, so which ones are served is well defined.
    await until(() => r.data === 'served' || r.closed, `client ${i}`);
  }
  assert.deepStrictEqual(
    results.map((r) => r.data),
    ['served', 'served', '', ''],
  );
  assert.ok(results[2].closed && results[3].closed);
  assert.strictEqual(served.length, 2);
  // When a served one leaves, a new one is served again.
  served[0].destroy();
  await once(served[0], 'close');
  const again = nodeNet.createConnection(port, '127.0.0.1');
  let againData = '';
  again.on('data', (d) => {
    againData += d;
  });
  await until(() => againData === 'served', 'served after a slot freed');
  clients.concat(again).forEach((c) => c.destroy());
  await close(server);
});

test('close() with open connections: nothing new accepted, one close after the last one', async () => {
  const socks = [];
  const server = net.createServer((c) => socks.push(c));
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const port = server.address().port;
  const client = nodeNet.createConnection(port, '127.0.0.1');
  await until(() => socks.length === 1, 'connection');
  let closes = 0;
  server.on('close', () => {
    closes += 1;
  });
  server.close();
  // No new connections once close() was called.
  const late = nodeNet.createConnection(port, '127.0.0.1');
  const lateErr = await new Promise((resolve) => {
    late.on('error', resolve);
    late.on('close', () => resolve(null));
  });
  assert.ok(lateErr === null || lateErr.code === 'ECONNREFUSED' || lateErr.code === 'ECONNRESET');
  assert.strictEqual(socks.length, 1);
  await delay(100);
  assert.strictEqual(closes, 0, "no 'close' while a connection is open");
  client.end();
  await until(() => closes === 1, 'server close');
  await delay(50);
  assert.strictEqual(closes, 1);
});

test('close() when not listening: callback gets ERR_SERVER_NOT_RUNNING', async () => {
  const server = net.createServer();
  const err = await new Promise((resolve) => server.close(resolve));
  assert.strictEqual(err.code, 'ERR_SERVER_NOT_RUNNING');
});

test('server.pause(msecs): connections wait in the backlog and are accepted after', async () => {
  const socks = [];
  const server = net.createServer((c) => socks.push(c));
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const port = server.address().port;
  server.pause(2000);
  // Commands of one handler are handled in order: once this later Connect
  // is answered, netcore has paused the server.
  const probe = net.createConnection(port, '127.0.0.1');
  await once(probe, 'connect'); // the kernel completes the handshake; accept waits
  const clients = [0, 1, 2].map(() => nodeNet.createConnection(port, '127.0.0.1'));
  await Promise.all(clients.map((c) => once(c, 'connect')));
  await delay(200);
  assert.strictEqual(socks.length, 0, 'nothing accepted during the pause');
  await until(() => socks.length === 4, 'accepted after the pause');
  clients.forEach((c) => c.destroy());
  probe.destroy();
  await close(server);
});

test('pauseOnConnect: the socket reads nothing until resume()', async () => {
  let sock;
  const server = net.createServer({ pauseOnConnect: true }, (c) => {
    sock = c;
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
  client.write('early');
  await until(() => sock, 'connection');
  let got = '';
  sock.on('data', (d) => {
    got += d;
  });
  await delay(100);
  assert.strictEqual(got, '');
  sock.resume();
  await until(() => got === 'early', 'data after resume');
  client.destroy();
  await close(server);
});
