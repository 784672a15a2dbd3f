#!/usr/bin/env node
'use strict';
// node-proxy.js: the proxy actor (actors/proxy.c) on Node's own `net`, the baseline of
// the benchmark's proxy loads: every accepted connection gets its own connection to the
// target and the two are piped into each other, with half-closes passed through
// (allowHalfOpen on both sides) and an error on one side destroying the other.
//
//   node tests/bench/node-proxy.js [--port N] [--host H] [--path P]
//                                  (--to-port N [--to-host H] | --to-path P)
//
// Prints "proxy listening on <address()>" once listening.
const net = require('net');

const opts = { port: 0, host: '127.0.0.1', path: null, 'to-port': null, 'to-host': 'localhost', 'to-path': null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const m = /^--([a-z-]+)$/.exec(argv[i]);
  if (!m || !(m[1] in opts) || argv[i + 1] === undefined) {
    console.error('usage: node node-proxy.js [--port N] [--host H] [--path P] (--to-port N [--to-host H] | --to-path P)');
    process.exit(2);
  }
  opts[m[1]] = argv[i + 1];
}
if (opts['to-port'] === null && opts['to-path'] === null) {
  console.error('node-proxy: --to-port or --to-path is required');
  process.exit(2);
}

const server = net.createServer({ allowHalfOpen: true }, (client) => {
  const upstream = opts['to-path'] !== null
    ? net.createConnection({ path: opts['to-path'], allowHalfOpen: true })
    : net.createConnection({ port: Number(opts['to-port']), host: opts['to-host'], allowHalfOpen: true });
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
});
server.on('error', (e) => {
  console.error(`node-proxy: ${e.code}: ${e.message}`);
  process.exit(1);
});
server.on('listening', () => {
  const a = server.address();
  const shown = typeof a === 'string' ? { address: a } : a;
  process.stdout.write(`proxy listening on ${JSON.stringify(shown)}\n`);
});
if (opts.path !== null) server.listen(opts.path);
else server.listen(Number(opts.port), opts.host);

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(0));
