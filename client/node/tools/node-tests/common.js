'use strict';
// common.js: a small stand-in for Node's test/common with the helpers the
// public-API net tests use. mustCall() counts are checked at a clean exit,
// as Node's are.

const assert = require('assert');

const checks = [];
process.on('exit', (code) => {
  if (code !== 0) return;
  for (const c of checks) {
    const ok = c.exact !== undefined ? c.n === c.exact : c.n >= c.min;
    if (!ok) {
      process.stderr.write(`mustCall ${c.name || '<anonymous>'}: ${c.n} calls, expected ${c.exact !== undefined ? c.exact : `>= ${c.min}`}\n`);
      process.exitCode = 1;
    }
  }
});

function counted(fn, rec) {
  checks.push(rec);
  return function countedCall(...args) {
    rec.n += 1;
    return fn ? fn.apply(this, args) : undefined;
  };
}

function mustCall(fn, exact = 1) {
  if (typeof fn === 'number') return counted(null, { n: 0, exact: fn });
  return counted(fn, { n: 0, exact, name: fn && fn.name });
}

function mustCallAtLeast(fn, min = 1) {
  if (typeof fn === 'number') return counted(null, { n: 0, min: fn });
  return counted(fn, { n: 0, min, name: fn && fn.name });
}

module.exports = {
  PORT: 12000 + (process.pid % 20000), // the old tests' fixed port: one per process
  mustCall,
  mustCallAtLeast,
  mustNotCall: (msg) => () => assert.fail(msg || 'function should not have been called'),
  mustSucceed: (fn) => mustCall(function succeeded(err, ...args) {
    assert.ifError(err);
    return fn ? fn.apply(this, args) : undefined;
  }),
  fail: (msg) => assert.fail(msg || 'fail'),
  platformTimeout: (ms) => ms,
  hasIPv6: true,
  isWindows: false,
  localhostIPv4: '127.0.0.1',
  skip: (msg) => {
    process.stdout.write(`1..0 # Skipped: ${msg}\n`);
    process.exit(0);
  },
};
