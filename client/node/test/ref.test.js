'use strict';
// ref()/unref() of servers and sockets, as Node's handles: a process whose
// remaining objects are all unref'd exits by itself; a ref'd one keeps it
// alive; an unref'd server still serves while something else keeps the
// process alive. Each case runs in its own child process.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const path = require('path');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, delay, until, NETCORE_BIN } = require('../test-support/netcore');

const LIB = path.resolve(__dirname, '..');
const LIMIT_MS = 15000; // a child still running by then has hung

let nc;
before(async () => {
  nc = await startNetcore();
});
after(async () => {
  await nc.stop();
});

// Starts `script` in a child node. Returns { child, lines (stdout lines so
// far), line(prefix) (a Promise of the first line starting with prefix),
// exited (a Promise of { code, signal, hung })}.
function startChild(script) {
  const child = spawn(process.execPath, ['-e', script], {
    env: { ...process.env, NETCORE_ENDPOINT: nc.endpoint, NC_LIB: LIB },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = [];
  const waiters = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(l);
      for (const w of waiters) if (!w.done && l.startsWith(w.prefix)) { w.done = true; w.resolve(l); }
    }
  });
  let hung = false;
  const killer = setTimeout(() => {
    hung = true;
    child.kill('SIGKILL');
  }, LIMIT_MS);
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, hung });
    });
  });
  const line = (prefix) => new Promise((resolve) => {
    const l = lines.find((x) => x.startsWith(prefix));
    if (l) resolve(l);
    else waiters.push({ prefix, resolve, done: false });
  });
  return { child, lines, line, exited };
}

test('a listening server unref()ed: the process exits by itself', async () => {
  const c = startChild(`
    const net = require(process.env.NC_LIB);
    const s = net.createServer(() => {});
    s.listen(0, '127.0.0.1', () => { console.log('port ' + s.address().port); s.unref(); });
  `);
  const r = await c.exited;
  assert.deepStrictEqual(r, { code: 0, signal: null, hung: false });
  assert.match(c.lines.join('\n'), /^port \d+$/m);
});

test('a ref()ed server keeps the process alive (unref then ref again too); closing it lets it exit', async () => {
  const c = startChild(`
    const net = require(process.env.NC_LIB);
    const s = net.createServer((conn) => { s.close(); conn.end('bye'); });
    s.unref();
    s.listen(0, '127.0.0.1', () => { s.ref(); console.log('port ' + s.address().port); });
  `);
  const port = Number((await c.line('port ')).split(' ')[1]);
  let gone = false;
  c.exited.then(() => {
    gone = true;
  });
  await delay(1500);
  assert.strictEqual(gone, false, 'the process exited while a ref()ed server existed');
  const got = await new Promise((resolve, reject) => {
    const peer = nodeNet.connect(port, '127.0.0.1');
    let data = '';
    peer.on('data', (d) => {
      data += d;
    });
    peer.on('error', reject);
    peer.on('close', () => resolve(data));
  });
  assert.strictEqual(got, 'bye');
  assert.deepStrictEqual(await c.exited, { code: 0, signal: null, hung: false });
});

test('an unref()ed server still serves while a timer keeps the process alive, then the process exits', async () => {
  const c = startChild(`
    const net = require(process.env.NC_LIB);
    const s = net.createServer((conn) => conn.end('served'));
    s.listen(0, '127.0.0.1', () => {
      s.unref();
      console.log('port ' + s.address().port);
      setTimeout(() => console.log('timer done'), 2000);
    });
  `);
  const port = Number((await c.line('port ')).split(' ')[1]);
  for (let i = 0; i < 3; i += 1) {
    const got = await new Promise((resolve, reject) => {
      const peer = nodeNet.connect(port, '127.0.0.1');
      let data = '';
      peer.on('data', (d) => {
        data += d;
      });
      peer.on('error', reject);
      peer.on('close', () => resolve(data));
    });
    assert.strictEqual(got, 'served');
  }
  assert.deepStrictEqual(await c.exited, { code: 0, signal: null, hung: false });
  assert.ok(c.lines.includes('timer done'));
});

test('a connected socket unref()ed: the process exits with the connection open; the peer sees it end', async () => {
  const peerClosed = [];
  const server = nodeNet.createServer((p) => {
    p.on('data', () => {});
    p.on('error', () => {});
    p.on('close', () => peerClosed.push(true));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const c = startChild(`
    const net = require(process.env.NC_LIB);
    const sock = net.connect(${server.address().port}, '127.0.0.1', () => {
      sock.write('x');
      sock.unref();
      console.log('connected');
    });
  `);
  const r = await c.exited;
  assert.deepStrictEqual(r, { code: 0, signal: null, hung: false });
  assert.ok(c.lines.includes('connected'));
  const deadline = Date.now() + 10000;
  while (peerClosed.length === 0 && Date.now() < deadline) await delay(20);
  assert.strictEqual(peerClosed.length, 1); // netcore closed it when the handler went
  server.close();
});

test('a socket unref()ed and ref()ed again keeps the process alive until it closes', async () => {
  const server = nodeNet.createServer((p) => {
    p.on('data', () => p.end('done'));
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const c = startChild(`
    const net = require(process.env.NC_LIB);
    const sock = net.connect(${server.address().port}, '127.0.0.1');
    sock.unref();
    sock.on('connect', () => {
      sock.ref();
      setTimeout(() => sock.write('go'), 1000).unref(); // only the socket keeps us alive
      console.log('connected');
    });
    sock.on('data', (d) => console.log('data ' + d));
  `);
  const r = await c.exited;
  assert.deepStrictEqual(r, { code: 0, signal: null, hung: false });
  assert.ok(c.lines.includes('data done'), c.lines.join('|'));
  server.close();
});

test('a socket unref()ed at once still connects and delivers its write before the process exits', async () => {
  let got = '';
  const ended = new Promise((resolve) => {
    const server = nodeNet.createServer((p) => {
      p.on('data', (d) => {
        got += d;
      });
      p.on('error', () => {});
      p.on('close', () => {
        server.close();
        resolve();
      });
    });
    server.listen(0, '127.0.0.1', () => {
      startChild(`
        const net = require(process.env.NC_LIB);
        net.connect(${server.address().port}, '127.0.0.1').unref().write('payload');
      `).exited.then((r) => assert.deepStrictEqual(r, { code: 0, signal: null, hung: false }));
    });
  });
  await ended;
  assert.strictEqual(got, 'payload');
});

test('an unref()ed server whose netcore dies (noticed by the lease) listens again on the next netcore', async () => {
  const own = await startNetcore(['--lease-ms', '600']);
  let proc2 = null;
  try {
    const server = net.createServer({ endpoint: own.endpoint }, (c) => c.end('again'));
    let listening = 0;
    server.on('listening', () => {
      listening += 1;
    });
    server.listen(0, '127.0.0.1');
    server.unref();
    await until(() => listening === 1, 'listening');
    const { port } = server.address();
    own.proc.kill('SIGKILL');
    await new Promise((r) => own.proc.once('exit', r));
    proc2 = spawn(NETCORE_BIN, ['--bind', own.endpoint, '--lease-ms', '600', '--log-level', 'warn'], { stdio: 'inherit' });
    await until(() => listening === 2, 'listening again');
    assert.strictEqual(server.address().port, port);
    const got = await new Promise((resolve, reject) => {
      const peer = nodeNet.connect(port, '127.0.0.1');
      let data = '';
      peer.on('data', (d) => {
        data += d;
      });
      peer.on('error', reject);
      peer.on('close', () => resolve(data));
    });
    assert.strictEqual(got, 'again');
    server.ref(); // back to a pending receive: close() is answered as usual
    await new Promise((r) => server.close(r));
  } finally {
    if (proc2) {
      const done = new Promise((r) => proc2.once('exit', r));
      proc2.kill('SIGTERM');
      await done;
    }
    require('fs').rmSync(own.dir, { recursive: true, force: true });
  }
});
