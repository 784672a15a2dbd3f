'use strict';
// The link to netcore: made lazily, never keeps a process alive by itself,
// and when netcore dies every object gets 'error' (ERR_NETCORE_GONE) and
// 'close' instead of hanging.

const { test } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const path = require('path');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, once, until } = require('../test-support/netcore');

const LIB = path.resolve(__dirname, '..');

// Runs a script in a child node; resolves with { code, signal, stdout, stderr }.
function runChild(script, env) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { env: { ...process.env, ...env, NC_LIB: LIB } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr, child }));
  });
}

test('netcore killed, reconnect: false: servers and sockets get ERR_NETCORE_GONE then close', async () => {
  const nc = await startNetcore();
  try {
    // Without reconnection (link.test.js has it): everything ends.
    const server = net.createServer({ endpoint: nc.endpoint, reconnect: false });
    await once(server.listen(0, '127.0.0.1'), 'listening');
    const accepted = [];
    server.on('connection', (c) => accepted.push(c));
    const outbound = new net.Socket({ endpoint: nc.endpoint, reconnect: false });
    outbound.connect(server.address().port, '127.0.0.1');
    await once(outbound, 'connect');
    await until(() => accepted.length === 1, 'connection');

    const seen = [];
    const watch = (name, emitter) => {
      emitter.on('error', (e) => seen.push(`${name}:error:${e.code}`));
      emitter.on('close', (hadError) => seen.push(`${name}:close${hadError === undefined ? '' : `:${hadError}`}`));
    };
    watch('server', server);
    watch('out', outbound);
    watch('in', accepted[0]);
    nc.proc.kill('SIGKILL');
    await until(() => seen.filter((s) => s.includes(':close')).length === 3, 'three closes');
    for (const name of ['server', 'out', 'in']) {
      const mine = seen.filter((s) => s.startsWith(`${name}:`));
      assert.strictEqual(mine[0], `${name}:error:ERR_NETCORE_GONE`, seen.join(' '));
      assert.ok(mine[1].startsWith(`${name}:close`), seen.join(' '));
      assert.strictEqual(mine.length, 2);
    }
    assert.ok(seen.includes('out:close:true') && seen.includes('in:close:true'));
  } finally {
    await nc.stop();
  }
});

test('a process using the library exits by itself once its objects are closed', async () => {
  const nc = await startNetcore();
  try {
    const peer = nodeNet.createServer((c) => c.end('bye'));
    await new Promise((r) => peer.listen(0, '127.0.0.1', r));
    const script = `
      const net = require(process.env.NC_LIB);
      const server = net.createServer();
      server.listen(0, '127.0.0.1', () => {
        const c = net.createConnection(${peer.address().port}, '127.0.0.1');
        c.setEncoding('utf8');
        c.on('data', (d) => process.stdout.write(d));
        c.on('close', () => server.close(() => process.stdout.write(' closed')));
      });`;
    const r = await runChild(script, { NETCORE_ENDPOINT: nc.endpoint });
    assert.strictEqual(r.code, 0, r.stderr);
    assert.strictEqual(r.stdout, 'bye closed');
    peer.close();
  } finally {
    await nc.stop();
  }
});

// docker compose down: netcore drains and exits first; then the handler gets SIGTERM
// and closes its server while the library is reconnecting to the gone netcore.
test('reconnecting to a gone netcore, the last server closed: the process exits', async () => {
  const nc = await startNetcore();
  const script = `
    const net = require(process.env.NC_LIB);
    const server = net.createServer();
    server.on('error', (e) => console.log('error', e.code));
    server.listen(0, '127.0.0.1', () => console.log('listening'));
    process.once('SIGTERM', () => server.close(() => console.log('closed')));`;
  const child = spawn(process.execPath, ['-e', script],
    { env: { ...process.env, NETCORE_ENDPOINT: nc.endpoint, NC_LIB: LIB } });
  let stdout = '';
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const exited = new Promise((r) => child.on('exit', (code, signal) => r({ code, signal })));
  try {
    await until(() => stdout.includes('listening'), 'listening', 10000);
    await nc.stop('SIGTERM'); // drains, announces Shutdown, exits: the library reconnects
    await new Promise((r) => setTimeout(r, 300));
    child.kill('SIGTERM');
    const guard = setTimeout(() => child.kill('SIGKILL'), 10000);
    const r = await exited;
    clearTimeout(guard);
    assert.deepStrictEqual(r, { code: 0, signal: null }, 'the process hung reconnecting: ' + stdout);
    assert.strictEqual(stdout, 'listening\nclosed\n');
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await nc.stop();
  }
});

test('netcore killed under a client process: it reports the error and exits, no hang', async () => {
  const nc = await startNetcore();
  try {
    const peer = nodeNet.createServer(() => {});
    await new Promise((r) => peer.listen(0, '127.0.0.1', r));
    const script = `
      const net = require(process.env.NC_LIB);
      const c = net.createConnection(${peer.address().port}, '127.0.0.1', () => console.log('connected'));
      c.on('error', (e) => console.log('error', e.code));
      c.on('close', (hadError) => console.log('close', hadError));`;
    const running = runChild(script, { NETCORE_ENDPOINT: nc.endpoint });
    await new Promise((r) => peer.once('connection', r));
    await new Promise((r) => setTimeout(r, 50));
    nc.proc.kill('SIGKILL');
    const r = await running;
    assert.strictEqual(r.code, 0, r.stderr);
    assert.strictEqual(r.stdout, 'connected\nerror ERR_NETCORE_GONE\nclose true\n');
    peer.close();
  } finally {
    await nc.stop();
  }
});

test('no netcore at the endpoint: ERR_NETCORE_UNAVAILABLE, then close, then exit', async () => {
  const script = `
    const net = require(process.env.NC_LIB);
    const s = net.createServer();
    s.on('error', (e) => console.log('error', e.code));
    s.on('close', () => console.log('close'));
    s.listen(0);`;
  const r = await runChild(script, {
    NETCORE_ENDPOINT: `ipc://${path.join(require('os').tmpdir(), `nc-absent-${process.pid}.sock`)}`,
    NETCORE_CONNECT_TIMEOUT_MS: '300',
  });
  assert.strictEqual(r.code, 0, r.stderr);
  assert.strictEqual(r.stdout, 'error ERR_NETCORE_UNAVAILABLE\nclose\n');
});

test('uint64 ids: many objects on one link keep distinct, exact ids', async () => {
  const nc = await startNetcore();
  try {
    const server = net.createServer({ endpoint: nc.endpoint }, (c) => c.end(String(c._id)));
    await once(server.listen(0, '127.0.0.1'), 'listening');
    const ids = new Set();
    const texts = [];
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const c = new net.Socket({ endpoint: nc.endpoint });
        c.connect(server.address().port, '127.0.0.1');
        c.setEncoding('utf8');
        let t = '';
        c.on('data', (d) => {
          t += d;
        });
        await once(c, 'close');
        ids.add(c._id);
        texts.push(t);
      }),
    );
    assert.strictEqual(ids.size, 20);
    for (const id of ids) {
      assert.strictEqual(typeof id, 'bigint');
      assert.ok(id >> 32n > 0n, 'our ids carry the Welcome prefix');
    }
    // Accepted sockets have prefix 0 and still name distinct sockets.
    assert.strictEqual(new Set(texts).size, 20);
    await new Promise((r) => server.close(r));
  } finally {
    await nc.stop();
  }
});

test('an idle handler keeps its lease by pinging (lease 300 ms, idle 1 s)', async () => {
  const nc = await startNetcore(['--lease-ms', '300']);
  try {
    const server = net.createServer({ endpoint: nc.endpoint }, (c) => c.end('still here'));
    await once(server.listen(0, '127.0.0.1'), 'listening');
    let failed = null;
    server.on('error', (e) => {
      failed = e;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const c = nodeNet.createConnection(server.address().port, '127.0.0.1');
    let got = '';
    c.on('data', (d) => {
      got += d;
    });
    await once(c, 'end');
    assert.strictEqual(got, 'still here');
    assert.strictEqual(failed, null);
    await new Promise((r) => server.close(r));
  } finally {
    await nc.stop();
  }
});

test('netcore frozen (SIGSTOP): an unanswered ping ends in ERR_NETCORE_GONE', async () => {
  const nc = await startNetcore(['--lease-ms', '300']);
  try {
    const server = net.createServer({ endpoint: nc.endpoint, reconnect: false });
    await once(server.listen(0, '127.0.0.1'), 'listening');
    const closed = new Promise((resolve) => server.once('close', resolve));
    const failed = new Promise((resolve) => server.once('error', resolve));
    nc.proc.kill('SIGSTOP');
    const err = await failed;
    assert.strictEqual(err.code, 'ERR_NETCORE_GONE');
    await closed;
  } finally {
    nc.proc.kill('SIGCONT');
    await nc.stop();
  }
});

test('netcore shutting down (SIGTERM): servers get ERR_NETCORE_SHUTDOWN, everything closes', async () => {
  const nc = await startNetcore();
  try {
    const accepted = [];
    const server = net.createServer({ endpoint: nc.endpoint, reconnect: false }, (c) => accepted.push(c));
    await once(server.listen(0, '127.0.0.1'), 'listening');
    const client = nodeNet.createConnection(server.address().port, '127.0.0.1');
    client.on('error', () => {});
    await until(() => accepted.length === 1, 'connection');
    const events = [];
    server.on('error', (e) => events.push(`server:error:${e.code}`));
    server.on('close', () => events.push('server:close'));
    accepted[0].on('error', (e) => events.push(`socket:error:${e.code}`));
    accepted[0].on('close', () => events.push('socket:close'));
    nc.proc.kill('SIGTERM');
    await until(() => events.includes('server:close') && events.includes('socket:close'), 'closes');
    assert.strictEqual(events[0], 'server:error:ERR_NETCORE_SHUTDOWN', events.join(' '));
    assert.strictEqual(events.filter((e) => e === 'server:close').length, 1);
    client.destroy();
  } finally {
    await nc.stop();
  }
});
