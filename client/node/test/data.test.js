'use strict';
// Data through netcore: greeting + echo, binary safety, half-close, byte
// counts, encodings. Peers are Node's own `net` sockets.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('fs');
const path = require('path');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, once, until, collect } = require('../test-support/netcore');

let nc;
before(async () => {
  nc = await startNetcore();
  process.env.NETCORE_ENDPOINT = nc.endpoint;
});
after(async () => {
  await nc.stop();
});

// The seed's echo server, on an OS-assigned port.
async function echoServer(options = {}) {
  const server = net.createServer(options, (c) => {
    c.write('hello\r\n');
    c.pipe(c);
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  return server;
}

async function closeServer(server) {
  await new Promise((resolve) => server.close(resolve));
}

test('echo server greets and echoes to a Node client', async () => {
  const server = await echoServer();
  const addr = server.address();
  assert.strictEqual(addr.address, '127.0.0.1');
  assert.ok(addr.port > 0);
  const client = nodeNet.createConnection(addr.port, '127.0.0.1');
  const got = collect(client);
  await until(() => got.buffer.toString() === 'hello\r\n', 'greeting');
  client.write('ping 1\n');
  await until(() => got.buffer.toString() === 'hello\r\nping 1\n', 'echo');
  client.end();
  await got.ended;
  await closeServer(server);
});

test('createConnection talks to a Node server, both directions', async () => {
  const nodeServer = nodeNet.createServer((c) => {
    c.write('from node');
    c.on('data', (d) => c.end(`re:${d}`));
  });
  await new Promise((r) => nodeServer.listen(0, '127.0.0.1', r));
  const { port } = nodeServer.address();
  let connected = false;
  const client = net.createConnection(port, '127.0.0.1', () => {
    connected = true;
  });
  client.setEncoding('utf8');
  let text = '';
  client.on('data', (d) => {
    text += d;
    if (text === 'from node') client.write('x');
  });
  const [hadError] = await once(client, 'close');
  assert.strictEqual(connected, true);
  assert.strictEqual(hadError, false);
  assert.strictEqual(text, 'from nodere:x');
  assert.strictEqual(client.remoteAddress, '127.0.0.1');
  assert.strictEqual(client.remotePort, port);
  assert.strictEqual(client.remoteFamily, 'IPv4');
  assert.ok(client.address().port > 0);
  nodeServer.close();
});

test('all 256 byte values survive both directions', async () => {
  const all = Buffer.alloc(256 * 64);
  for (let i = 0; i < all.length; i++) all[i] = i % 256;
  const server = net.createServer((c) => c.pipe(c));
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
  const got = collect(client);
  client.end(all);
  await got.ended;
  assert.ok(got.buffer.equals(all));
  await closeServer(server);

  // And from a netcore client to a Node server.
  const received = [];
  const nodeServer = nodeNet.createServer((c) => {
    c.on('data', (d) => received.push(d));
    c.on('end', () => c.end());
  });
  await new Promise((r) => nodeServer.listen(0, '127.0.0.1', r));
  const out = net.createConnection(nodeServer.address().port, '127.0.0.1');
  out.end(all);
  await once(out, 'close');
  assert.ok(Buffer.concat(received).equals(all));
  assert.strictEqual(out.bytesWritten, all.length);
  nodeServer.close();
});

test('allowHalfOpen: our side stays writable after the peer ends', async () => {
  let serverSock;
  const events = [];
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    serverSock = c;
    c.setEncoding('utf8');
    let req = '';
    c.on('data', (d) => {
      req += d;
    });
    c.on('end', () => {
      events.push('end');
      // The peer's FIN arrived; we may still answer, then end ourselves.
      c.write(`got ${req}`, () => {
        events.push('write-cb');
        c.end(' bye');
      });
    });
    c.on('close', (hadError) => events.push(`close:${hadError}`));
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const client = nodeNet.createConnection({ port: server.address().port, host: '127.0.0.1', allowHalfOpen: true });
  const got = collect(client);
  client.end('question');
  await got.ended;
  assert.strictEqual(got.buffer.toString(), 'got question bye');
  client.end();
  await until(() => events.includes('close:false'), 'server socket close');
  assert.deepStrictEqual(events, ['end', 'write-cb', 'close:false']);
  assert.strictEqual(serverSock.bytesRead, 'question'.length);
  assert.strictEqual(serverSock.bytesWritten, 'got question bye'.length);
  await closeServer(server);
});

test('without allowHalfOpen the peer FIN ends our side after queued writes', async () => {
  const big = Buffer.alloc(2 * 1024 * 1024, 'z');
  let serverClose;
  const server = net.createServer((c) => {
    serverClose = once(c, 'close');
    c.write(big);
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const client = nodeNet.createConnection({ port: server.address().port, host: '127.0.0.1', allowHalfOpen: true });
  const got = collect(client);
  client.end(); // FIN at once, while the server's 2 MB are still on their way
  await got.ended; // the server's side ended by itself, after all its data
  assert.strictEqual(got.buffer.length, big.length);
  const [hadError] = await serverClose;
  assert.strictEqual(hadError, false);
  await closeServer(server);
});

test('setEncoding utf8 decodes characters split across reads', async () => {
  let serverSock;
  const server = net.createServer((c) => {
    serverSock = c;
  });
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
  client.setNoDelay(true);
  await until(() => serverSock, 'connection');
  serverSock.setEncoding('utf8');
  const pieces = [];
  serverSock.on('data', (d) => pieces.push(d));
  const text = 'é€😀';
  const bytes = Buffer.from(text, 'utf8');
  // One byte at a time, each only after the previous one arrived, so every
  // multi-byte character is split across Data events.
  for (let i = 0; i < bytes.length; i++) {
    client.write(bytes.subarray(i, i + 1));
    await until(() => serverSock.bytesRead === i + 1, `byte ${i}`);
  }
  assert.strictEqual(pieces.join(''), text);
  assert.ok(pieces.every((p) => typeof p === 'string' && !p.includes('\ufffd')));
  client.destroy();
  await once(serverSock, 'close');
  await closeServer(server);
});

test('setEncoding base64 and ascii, and none gives Buffers', async () => {
  const socks = [];
  const server = net.createServer((c) => socks.push(c));
  await once(server.listen(0, '127.0.0.1'), 'listening');
  const payload = Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x41, 0x42]);
  for (const enc of ['base64', 'ascii', null]) {
    const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
    await until(() => socks.length > 0, 'connection');
    const s = socks.shift();
    if (enc) s.setEncoding(enc);
    const parts = [];
    s.on('data', (d) => parts.push(d));
    client.end(payload);
    await once(s, 'end');
    if (enc === null) {
      assert.ok(parts.every(Buffer.isBuffer));
      assert.ok(Buffer.concat(parts).equals(payload));
    } else if (enc === 'base64') {
      assert.strictEqual(Buffer.from(parts.join(''), 'base64').toString('hex'), payload.toString('hex'));
    } else {
      assert.strictEqual(parts.join(''), payload.toString('ascii'));
    }
    await once(s, 'close');
  }
  await closeServer(server);
});

for (const kind of ['tcp 127.0.0.1', 'tcp ::1', 'unix']) {
  test(`ping-pong 1000 rounds over ${kind}, allowHalfOpen server, last reply after end()`, async () => {
    const server = net.createServer({ allowHalfOpen: true }, (c) => {
      c.setEncoding('utf8');
      c.on('data', (d) => c.write(d));
      c.on('end', () => c.end('last'));
    });
    const sockPath = path.join(nc.dir, 'pp.sock');
    if (kind === 'unix') {
      await once(server.listen(sockPath), 'listening');
      assert.strictEqual(server.address(), sockPath);
    } else {
      await once(server.listen(0, kind.slice(4)), 'listening');
      assert.strictEqual(server.address().family, kind === 'tcp ::1' ? 'IPv6' : 'IPv4');
    }
    const client = kind === 'unix' ? net.createConnection(sockPath) : net.createConnection(server.address().port, kind.slice(4));
    await once(client, 'connect');
    if (kind === 'tcp ::1') assert.strictEqual(client.remoteAddress, '::1');
    client.setEncoding('utf8');
    const ROUNDS = 1000;
    let rounds = 0;
    let callbacks = 0;
    let tail = '';
    const onWritten = (err) => {
      assert.ifError(err);
      callbacks += 1;
    };
    await new Promise((resolve) => {
      client.on('data', (d) => {
        if (rounds === ROUNDS) {
          tail += d;
          return;
        }
        assert.strictEqual(d, `ping ${rounds}`);
        rounds += 1;
        if (rounds === ROUNDS) {
          client.end();
          resolve();
        } else {
          client.write(`ping ${rounds}`, onWritten);
        }
      });
      client.write('ping 0', onWritten);
    });
    const [hadError] = await once(client, 'close');
    assert.strictEqual(hadError, false);
    assert.strictEqual(tail, 'last');
    assert.strictEqual(callbacks, ROUNDS);
    const sent = Array.from({ length: ROUNDS }, (_, i) => `ping ${i}`).join('').length;
    assert.strictEqual(client.bytesWritten, sent);
    assert.strictEqual(client.bytesRead, sent + 'last'.length);
    await closeServer(server);
    if (kind === 'unix') assert.strictEqual(fs.existsSync(sockPath), false, 'close() unlinks the path');
  });
}
