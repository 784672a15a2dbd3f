'use strict';
// test-support/netcore.js: starts a real netcore for a test file and gives
// small helpers the tests share. Kept outside test/ so that `node --test
// test/` does not run it as a test file.
//
// The binary is $NETCORE_BIN, else build/netcore/netcore of this checkout.

const { spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const nodeNet = require('net');

const NETCORE_BIN = process.env.NETCORE_BIN || path.resolve(__dirname, '..', '..', '..', 'build', 'netcore', 'netcore');

// Starts netcore on an ipc endpoint in a fresh temp dir and waits until it
// accepts handlers. Returns { endpoint, dir, proc, stop() }.
async function startNetcore(extraArgs = []) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-node-'));
  const sockPath = path.join(dir, 'nc.sock');
  const endpoint = `ipc://${sockPath}`;
  const proc = spawn(NETCORE_BIN, ['--bind', endpoint, '--log-level', 'warn', ...extraArgs], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  let exited = null;
  proc.on('exit', (code, signal) => {
    exited = { code, signal };
  });
  await new Promise((resolve, reject) => {
    proc.once('error', reject);
    const deadline = Date.now() + 10000;
    const poll = () => {
      if (exited) return reject(new Error(`netcore exited at start: ${JSON.stringify(exited)}`));
      if (fs.existsSync(sockPath)) return resolve();
      if (Date.now() > deadline) return reject(new Error('netcore did not create its ipc socket'));
      return setTimeout(poll, 10);
    };
    poll();
  });
  return {
    endpoint,
    dir,
    proc,
    exited: () => exited,
    async stop(signal = 'SIGTERM') {
      if (!exited) {
        const done = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill(signal);
        await done;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
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
