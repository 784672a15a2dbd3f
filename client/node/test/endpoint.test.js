'use strict';
// netcore-net finds netcore where netcore puts itself by default:
// defaultEndpoint() follows the rule netcore and every client library share
// (XDG_RUNTIME_DIR, root, per-user fallback; the table of netcore's
// tests/unit/test_default_endpoint.c), a program that names no endpoint
// reaches a netcore started without --bind, and NETCORE_ENDPOINT and the
// endpoint option still win.

const { test } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const net = require('..');
const { startNetcore } = require('../test-support/netcore');

const LIB = path.resolve(__dirname, '..');

const RULE = [
  // [XDG_RUNTIME_DIR or undefined, euid, endpoint]
  ['/run/user/1000', 1000, 'ipc:///run/user/1000/netcore/netcore.sock'],
  ['/run/user/1000//', 1000, 'ipc:///run/user/1000/netcore/netcore.sock'],
  ['/run/user/0', 0, 'ipc:///run/user/0/netcore/netcore.sock'],
  [undefined, 0, 'ipc:///run/netcore/netcore.sock'],
  ['', 0, 'ipc:///run/netcore/netcore.sock'],
  ['relative/dir', 0, 'ipc:///run/netcore/netcore.sock'],
  [undefined, 1000, 'ipc:///tmp/netcore-1000/netcore.sock'],
  ['', 4294967294, 'ipc:///tmp/netcore-4294967294/netcore.sock'],
];

// The environment of this process without the two variables the rule reads.
function envWith(changes) {
  const env = { ...process.env };
  delete env.NETCORE_ENDPOINT;
  delete env.XDG_RUNTIME_DIR;
  for (const [k, v] of Object.entries(changes)) if (v !== undefined) env[k] = v;
  return env;
}

test('defaultEndpoint() follows the shared rule', () => {
  const saved = { xdg: process.env.XDG_RUNTIME_DIR, geteuid: process.geteuid };
  try {
    for (const [xdg, uid, want] of RULE) {
      if (xdg === undefined) delete process.env.XDG_RUNTIME_DIR;
      else process.env.XDG_RUNTIME_DIR = xdg;
      process.geteuid = () => uid;
      assert.strictEqual(net.defaultEndpoint(), want, `XDG_RUNTIME_DIR=${xdg} euid=${uid}`);
    }
  } finally {
    process.geteuid = saved.geteuid;
    if (saved.xdg === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved.xdg;
  }
});

// A child node program that listens on port 0 through netcore-net (with
// `options` for createServer) and prints the port, or the error code.
function listenInChild(env, options = {}) {
  const script = `
    const net = require(process.env.NC_LIB);
    const s = net.createServer(${JSON.stringify(options)});
    s.on('error', (e) => console.log('error', e.code));
    s.listen(0, '127.0.0.1', () => { console.log('port', s.address().port); s.close(); });`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], { env: { ...env, NC_LIB: LIB } });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

test('no endpoint given: reaches a netcore started without --bind; NETCORE_ENDPOINT and the option win', async () => {
  const nc = await startNetcore([], { defaultEndpoint: true, env: envWith({}), keepDir: true });
  const { dir, sockPath: sock } = nc;
  try {
    const byDefault = await listenInChild(envWith({ XDG_RUNTIME_DIR: dir }));
    assert.strictEqual(byDefault.code, 0, byDefault.err);
    assert.match(byDefault.out, /^port [1-9][0-9]*\n$/);

    const nobody = `ipc://${path.join(dir, 'nobody.sock')}`;
    const env = envWith({ XDG_RUNTIME_DIR: dir, NETCORE_ENDPOINT: nobody, NETCORE_CONNECT_TIMEOUT_MS: '300' });
    const byEnv = await listenInChild(env);
    assert.strictEqual(byEnv.out, 'error ERR_NETCORE_UNAVAILABLE\n', byEnv.err);

    const byOption = await listenInChild(env, { endpoint: `ipc://${sock}` });
    assert.strictEqual(byOption.code, 0, byOption.err);
    assert.match(byOption.out, /^port [1-9][0-9]*\n$/);
  } finally {
    await nc.stop();
    const left = fs.existsSync(sock);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.ok(!left, 'netcore left its socket file behind');
  }
});
