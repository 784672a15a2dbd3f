#!/usr/bin/env node
// node-echo: the seed's echo example on Node's own `net` module, the peer users would pick
// instead of netcore. Same command line and stdout line as the example actors:
//   node node-echo.js [--port N] [--host H] [--path P]
//   -> echo server listening on {"address":"127.0.0.1","family":"IPv4","port":N}
//      (or {"address":"/path"} for a UNIX path)
// The server is exactly the seed's (`c.write('hello\r\n'); c.pipe(c)`) plus an 'error'
// handler per connection, so a peer's reset does not kill the process.
'use strict';
const net = require('net');

let port = 8124;
let host = 'localhost';
let path = null;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const v = argv[i + 1];
  if (a === '--port' && v !== undefined) { port = Number(v); i++; }
  else if (a === '--host' && v !== undefined) { host = v; i++; }
  else if (a === '--path' && v !== undefined) { path = v; i++; }
  else {
    console.error('usage: node node-echo.js [--port N] [--host H] [--path P]');
    process.exit(1);
  }
}

const server = net.createServer((c) => {
  c.on('error', () => {});
  c.write('hello\r\n');
  c.pipe(c);
});
server.on('error', (e) => {
  console.error(`${e.code}: ${e.message}`);
  process.exit(1);
});
server.on('listening', () => {
  // address() is a bare string for a UNIX path; the actors print {"address": path}.
  const a = server.address();
  const shown = typeof a === 'string' ? { address: a } : a;
  process.stdout.write(`echo server listening on ${JSON.stringify(shown)}\n`);
});
if (path !== null) server.listen(path);
else server.listen(port, host);

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
