#!/usr/bin/env node
'use strict';
// goodbye.js: the seed's server.address() example as a netcore handler actor:
// listens on an OS-assigned port on 127.0.0.1, prints
// "opened server on %j" of server.address(), and answers every connection
// with "goodbye\n" before ending it.
//
//   node actors/node/goodbye.js [--endpoint E]

const net = require('./netcore');
const { parseArgs } = require('./args');

const opts = parseArgs('goodbye', process.argv.slice(2), { endpoint: null });

const server = net.createServer({ endpoint: opts.endpoint || undefined }, (socket) => {
  socket.on('error', () => {}); // a peer's reset ends that connection only
  socket.end('goodbye\n');
});

server.on('error', (err) => {
  process.stderr.write(`goodbye: ${err.code}: ${err.message}\n`);
  process.exit(1);
});

server.listen(0, '127.0.0.1', () => {
  console.log('opened server on %j', server.address());
});

function stop() {
  const fallback = setTimeout(() => process.exit(0), 3000);
  server.close(() => clearTimeout(fallback));
}
process.once('SIGINT', stop);
process.once('SIGTERM', stop);
