#!/usr/bin/env node
'use strict';
// redis.js: the benchmark's Redis-protocol server (PING, ECHO, SET, GET;
// resp.js) as a netcore handler actor on our Node.js library. The same code
// on Node's own `net` is tests/bench/node-redis.js.
//
//   node actors/node/redis.js [--port N] [--host H] [--path P] [--endpoint E]
//
// Prints "redis server listening on <address()>" once listening; errors to
// stderr with their Node code (exit 1); SIGINT/SIGTERM exit 0.

const net = require('./netcore');
const { parseArgs } = require('./args');
const { serve } = require('./resp');

const opts = parseArgs('redis', process.argv.slice(2), {
  port: 6379, host: '127.0.0.1', path: null, endpoint: null,
});
const store = new Map();
const server = net.createServer({ endpoint: opts.endpoint || undefined }, (c) => serve(c, store));

server.on('error', (err) => {
  if (err.code === 'ERR_NETCORE_SHUTDOWN') return;
  process.stderr.write(`redis: ${err.code}: ${err.message}\n`);
  process.exit(1);
});
server.on('listening', () => {
  const a = server.address();
  const shown = typeof a === 'string' ? { address: a } : { address: a.address, port: a.port };
  process.stdout.write(`redis server listening on ${JSON.stringify(shown)}\n`);
});
server.listen(opts.path !== null ? { path: opts.path } : { port: opts.port, host: opts.host });

process.once('SIGINT', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
