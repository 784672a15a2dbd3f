'use strict';
// test-support/netcore.js, the Node.js tests' netcore launcher, against the
// real netcore: ready means --ping is answered, an exit at start is reported,
// and a test process that ends half-way leaves no netcore running.

const { test } = require('node:test');
const assert = require('node:assert');
const { execFile } = require('child_process');
const fs = require('fs');
const path = require('path');
const { startNetcore, until } = require('../test-support/netcore');

const SUPPORT = path.resolve(__dirname, '..', 'test-support', 'netcore.js');

test('ready once --ping answers; stop() ends it and removes its dir', async () => {
  const nc = await startNetcore();
  assert.strictEqual(nc.exited(), null);
  assert.ok(fs.existsSync(nc.sockPath));
  await nc.stop();
  assert.deepStrictEqual(nc.exited(), { code: 0, signal: null });
  assert.ok(!fs.existsSync(nc.dir));
});

test('a netcore that exits at start is reported with its status', async () => {
  await assert.rejects(startNetcore(['--no-such-flag']), /netcore exited at start: {"code":2/);
});

for (const how of ['process.exit(3)', "throw new Error('a test failed half-way')"]) {
  test(`what a test process started is killed when it ends half-way (${how})`, async () => {
    const script = `const { startNetcore } = require(${JSON.stringify(SUPPORT)});
      startNetcore().then((nc) => { console.log(nc.proc.pid); ${how}; });`;
    const out = await new Promise((resolve) => {
      execFile(process.execPath, ['-e', script], (err, stdout) => resolve(stdout));
    });
    const pid = Number(out.trim());
    assert.ok(pid > 0, `the child printed ${JSON.stringify(out)}`);
    // Killed: gone, or a zombie until whoever inherited it reaps it.
    const dead = () => {
      try {
        return fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1][0] === 'Z';
      } catch (e) {
        return e.code === 'ENOENT';
      }
    };
    await until(dead, `netcore ${pid} killed`, 5000);
  });
}
