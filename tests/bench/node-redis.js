#!/usr/bin/env node
'use strict';
// node-redis.js: the benchmark's Redis-protocol server (actors/node/resp.js,
// the very code of actors/node/redis.js) on Node's own `net`: the baseline of
// the redis loads.
//
//   node tests/bench/node-redis.js [--port N] [--host H] [--path P]
//
// Prints "redis server listening on <address()>" once listening.

const net = require('net');
const { parseArgs } = require('../../actors/node/args');
const { serve } = require('../../actors/node/resp');

const opts = parseArgs('node-redis', process.argv.slice(2), { port: 6379, host: '127.0.0.1', path: null });
const store = new Map();
const server = net.createServer((c) => serve(c, store));

server.on('error', (err) => {
  process.stderr.write(`node-redis: ${err.code}: ${err.message}\n`);
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
