'use strict';
// The JavaScript example actors, run as the conformance suite and the
// README run them: actors/node/echo.js and goodbye.js.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const path = require('path');
const readline = require('readline');
const nodeNet = require('net');
const { startNetcore, once, until, collect } = require('../test-support/netcore');

const ACTORS = path.resolve(__dirname, '..', '..', '..', 'actors', 'node');

let nc;
before(async () => {
  nc = await startNetcore();
});
after(async () => {
  await nc.stop();
});

// Starts an actor and resolves with its first stdout line.
async function startActor(name, args, env = {}) {
  const child = spawn(process.execPath, [path.join(ACTORS, name), ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  const rl = readline.createInterface({ input: child.stdout });
  const line = await Promise.race([
    new Promise((resolve) => rl.once('line', resolve)),
    exited.then((e) => {
      throw new Error(`${name} exited early: ${JSON.stringify(e)} ${stderr}`);
    }),
  ]);
  return { child, line, exited, stderr: () => stderr };
}

test('echo.js: listening line, greeting, echo, exit 0 on SIGTERM', async () => {
  const a = await startActor('echo.js', ['--port', '0', '--host', '127.0.0.1', '--endpoint', nc.endpoint]);
  const m = /^echo server listening on (\{.*\})$/.exec(a.line);
  assert.ok(m, a.line);
  const addr = JSON.parse(m[1]);
  assert.deepStrictEqual(Object.keys(addr), ['address', 'port']);
  assert.strictEqual(addr.address, '127.0.0.1');
  const c = nodeNet.createConnection(addr.port, '127.0.0.1');
  const got = collect(c);
  await until(() => got.buffer.toString() === 'hello\r\n', 'greeting');
  c.write('echo me');
  await until(() => got.buffer.toString() === 'hello\r\necho me', 'echo');
  a.child.kill('SIGTERM');
  const e = await a.exited;
  assert.strictEqual(e.code, 0, a.stderr());
  await got.ended;
});

test('echo.js --path with NETCORE_ENDPOINT from the environment', async () => {
  const p = path.join(nc.dir, 'echo.sock');
  const child = spawn(process.execPath, [path.join(ACTORS, 'echo.js'), '--path', p], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NETCORE_ENDPOINT: nc.endpoint },
  });
  const rl = readline.createInterface({ input: child.stdout });
  const [line] = await once(rl, 'line');
  assert.strictEqual(line, `echo server listening on ${JSON.stringify({ address: p })}`);
  const c = nodeNet.createConnection(p);
  const got = collect(c);
  c.end('x');
  await got.ended;
  assert.strictEqual(got.buffer.toString(), 'hello\r\nx');
  const exited = new Promise((resolve) => child.on('exit', resolve));
  child.kill('SIGINT');
  assert.strictEqual(await exited, 0);
});

test('echo.js on a port in use: the Node code on stderr, exit 1', async () => {
  const holder = nodeNet.createServer();
  await new Promise((r) => holder.listen(0, '127.0.0.1', r));
  const child = spawn(
    process.execPath,
    [path.join(ACTORS, 'echo.js'), '--port', String(holder.address().port), '--host', '127.0.0.1', '--endpoint', nc.endpoint],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stderr = '';
  let stdout = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.stdout.on('data', (d) => {
    stdout += d;
  });
  const [code] = await once(child, 'exit');
  assert.strictEqual(code, 1);
  assert.match(stderr, /EADDRINUSE/);
  assert.strictEqual(stdout, '');
  holder.close();
});

test('goodbye.js: prints its address, says goodbye and ends', async () => {
  const a = await startActor('goodbye.js', ['--endpoint', nc.endpoint]);
  const m = /^opened server on (\{.*\})$/.exec(a.line);
  assert.ok(m, a.line);
  const addr = JSON.parse(m[1]);
  assert.strictEqual(addr.address, '127.0.0.1');
  assert.ok(addr.port > 0);
  for (let i = 0; i < 3; i++) {
    const c = nodeNet.createConnection(addr.port, '127.0.0.1');
    const got = collect(c);
    await got.ended;
    assert.strictEqual(got.buffer.toString(), 'goodbye\n');
    c.end();
  }
  a.child.kill('SIGTERM');
  assert.strictEqual((await a.exited).code, 0);
});

test('echo.js exits 1 with an error when netcore goes away (NETCORE_RECONNECT=0)', async () => {
  const own = await startNetcore();
  try {
    const a = await startActor('echo.js', ['--port', '0', '--host', '127.0.0.1', '--endpoint', own.endpoint], {
      NETCORE_RECONNECT: '0',
    });
    own.proc.kill('SIGKILL');
    const e = await a.exited;
    assert.strictEqual(e.code, 1);
    assert.match(a.stderr(), /ERR_NETCORE_GONE/);
  } finally {
    await own.stop();
  }
});
