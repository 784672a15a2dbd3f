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
const { serve, listen } = require('../../actors/node/resp');

const opts = parseArgs('node-redis', process.argv.slice(2), { port: 6379, host: '127.0.0.1', path: null });
const store = new Map();
const server = net.createServer((c) => serve(c, store));
listen(server, 'node-redis', opts);
