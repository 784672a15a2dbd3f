#!/usr/bin/env node
'use strict';
// via-echo.js: the benchmark's echo through the handler on the Node.js library, for
// measuring (profile.sh --actor via-node): write() from 'data', pause() when it
// returns false, resume() on 'drain'.
//   node tests/bench/via-echo.js [--port N] [--host H] [--path P] [--endpoint E]
const net = require('../../client/node');

const opts = { port: 8124, host: 'localhost', path: null, endpoint: null };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in opts) || argv[i + 1] === undefined) {
    process.stderr.write(`usage: via-echo.js [--port N] [--host H] [--path P] [--endpoint E]\n`);
    process.exit(2);
  }
  opts[k] = k === 'port' ? Number(argv[i + 1]) : argv[i + 1];
}
const server = net.createServer({ endpoint: opts.endpoint || undefined }, (c) => {
  c.on('error', () => {});
  c.write('hello\r\n');
  c.on('data', (d) => { if (!c.write(d)) c.pause(); });
  c.on('drain', () => c.resume());
});
server.on('error', (err) => {
  process.stderr.write(`via-echo: ${err.code}: ${err.message}\n`);
  process.exit(1);
});
server.on('listening', () => {
  const a = server.address();
  const shown = typeof a === 'string' ? { address: a } : { address: a.address, port: a.port };
  process.stdout.write(`echo server listening on ${JSON.stringify(shown)}\n`);
});
server.listen(opts.path !== null ? { path: opts.path } : { port: opts.port, host: opts.host });
const stop = () => process.exit(0);
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
