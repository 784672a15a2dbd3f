'use strict';
// test-support/netcore.js: the one way Node.js tests start the real netcore,
// and small helpers the tests share. Kept outside test/ so that `node --test
// test/` does not run it as a test file.
//
// The binary is $NETCORE_BIN, else build/netcore/netcore of this checkout.
// startNetcore() gives a fresh temp dir with an ipc endpoint inside (or no
// --bind and XDG_RUNTIME_DIR set to the dir: defaultEndpoint), resolves once
// `netcore --ping` answers there, and every netcore it started and nobody
// stopped is killed when the test process exits, even after a failure.

const { spawn, execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const nodeNet = require('net');

const NETCORE_BIN = process.env.NETCORE_BIN || path.resolve(__dirname, '..', '..', '..', 'build', 'netcore', 'netcore');
const START_TIMEOUT_MS = 10000;
const PING_TIMEOUT_MS = 1000;

const live = new Set(); // child processes started and not yet exited
process.on('exit', () => {
  for (const proc of live) proc.kill('SIGKILL');
});

// Whether a netcore answers Hello on endpoint now (`netcore --ping`).
function ping(endpoint) {
  return new Promise((resolve) => {
    execFile(NETCORE_BIN, ['--ping', '--endpoint', endpoint, '--timeout-ms', String(PING_TIMEOUT_MS)],
      (err) => resolve(!err));
  });
}

// Runs netcore with args and resolves once it answers --ping on endpoint;
// rejects (after killing it) if it exits first or stays silent.
async function launch(args, endpoint, opts) {
  const proc = spawn(NETCORE_BIN, args, {
    env: opts.env,
    stdio: ['ignore', 'inherit', opts.stderr === 'pipe' ? 'pipe' : 'inherit'],
  });
  const state = { proc, exited: null, log: '' };
  live.add(proc);
  if (proc.stderr) proc.stderr.on('data', (d) => { state.log += d; });
  proc.on('exit', (code, signal) => {
    state.exited = { code, signal };
    live.delete(proc);
  });
  const spawned = new Promise((resolve, reject) => {
    proc.once('spawn', resolve);
    proc.once('error', reject);
  });
  await spawned;
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (state.exited) throw new Error(`netcore exited at start: ${JSON.stringify(state.exited)} ${state.log}`);
    if (await ping(endpoint)) return state;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`netcore did not answer --ping on ${endpoint} within ${START_TIMEOUT_MS} ms`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

// Starts netcore and waits until it accepts handlers. extraArgs: more flags.
// opts: { dir (use it instead of a fresh one), defaultEndpoint, logLevel
// ('warn'), env (default process.env), stderr ('inherit' or 'pipe': then
// log() returns it), keepDir (stop() leaves the dir) }.
// Returns { endpoint, dir, sockPath, proc, exited(), log(), stop(signal),
// kill(), restart() }.
async function startNetcore(extraArgs = [], opts = {}) {
  const dir = opts.dir || fs.mkdtempSync(path.join(os.tmpdir(), 'nc-node-'));
  const sockPath = opts.defaultEndpoint ? path.join(dir, 'netcore', 'netcore.sock') : path.join(dir, 'nc.sock');
  const endpoint = `ipc://${sockPath}`;
  const env = { ...(opts.env || process.env) };
  const args = ['--log-level', opts.logLevel || 'warn'];
  if (opts.defaultEndpoint) {
    env.XDG_RUNTIME_DIR = dir;
    delete env.NETCORE_ENDPOINT;
  } else {
    args.push('--bind', endpoint);
  }
  args.push(...extraArgs);
  let state = await launch(args, endpoint, { ...opts, env });
  const nc = {
    endpoint,
    dir,
    sockPath,
    get proc() {
      return state.proc;
    },
    exited: () => state.exited,
    log: () => state.log,
    // Signals it (SIGTERM), waits for its exit, removes the dir (unless keepDir).
    async stop(signal = 'SIGTERM') {
      if (!state.exited) {
        const done = new Promise((resolve) => state.proc.once('exit', resolve));
        state.proc.kill(signal);
        await done;
      }
      if (!opts.keepDir) fs.rmSync(dir, { recursive: true, force: true });
    },
    // SIGKILL and wait; the dir stays (for restart()).
    async kill() {
      if (state.exited) return;
      const done = new Promise((resolve) => state.proc.once('exit', resolve));
      state.proc.kill('SIGKILL');
      await done;
    },
    // Starts netcore again on the same endpoint (after it exited).
    async restart() {
      if (!state.exited) throw new Error('restart: netcore still runs');
      state = await launch(args, endpoint, { ...opts, env });
    },
  };
  return nc;
}

// Resolves with the first emission of `event`, or rejects on 'error' first.
function once(emitter, event) {
  return new Promise((resolve, reject) => {
    const onEvent = (...args) => {
      emitter.removeListener('error', onError);
      resolve(args);
    };
    const onError = (err) => {
      emitter.removeListener(event, onEvent);
      reject(err);
    };
    emitter.once(event, onEvent);
    if (event !== 'error') emitter.once('error', onError);
  });
}

// Resolves once predicate() is true, checking every few milliseconds.
async function until(predicate, what = 'condition', limitMs = 20000) {
  const deadline = Date.now() + limitMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

// A TCP port on 127.0.0.1 that nobody listens on (bound then released).
async function freePort() {
  const s = nodeNet.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

// Collects everything a stream sends until 'end' or 'close'.
function collect(stream) {
  const chunks = [];
  stream.on('data', (c) => chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c)));
  return {
    chunks,
    get buffer() {
      return Buffer.concat(chunks);
    },
    ended: new Promise((resolve) => stream.once('end', resolve)),
  };
}

module.exports = { startNetcore, once, until, delay, freePort, collect, NETCORE_BIN };
