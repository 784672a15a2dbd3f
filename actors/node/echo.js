#!/usr/bin/env node
'use strict';
// echo.js: the seed's echo server (c.write('hello\r\n'); c.pipe(c)) as a
// netcore handler actor in JavaScript.
//
//   node actors/node/echo.js [--port N] [--host H] [--path P] [--endpoint E]
//                            [--group G] [--service S] [--via-handler]
//
// --via-handler: echo from the 'data' listener instead of pipe(): write()
// every chunk back, pause() when write() returns false, resume() on 'drain'.
// Every byte then passes through this process (pipe() may stay in netcore),
// which is the path through a handler the benchmark measures.
//
// Prints one line once listening ("echo server listening on <address()>"),
// errors to stderr with their Node code (exit 1); SIGINT/SIGTERM close the
// server and exit 0, and so does netcore announcing its own shutdown (it
// drains, then closes everything). SIGUSR1 prints "echo connections N
// adopted M": the 'connection' events so far and how many were adopted (a
// session resumed after a netcore takeover has none new, PROTOCOL.md 16.1).

const net = require('./netcore');
const { parseArgs } = require('./args');

const opts = parseArgs('echo', process.argv.slice(2), {
  port: 8124, host: 'localhost', path: null, endpoint: null, group: null, service: null,
}, ['via-handler']);
// --service S: a restarted echo with the same name inherits the connections
// (read by the library's Hello); --group G shares the port (PROTOCOL.md 13).
// With either, SIGINT/SIGTERM hand the connections over (Bye{handoff}); a
// connection adopted from an echo that died or left is greeted only when
// nothing was written to it yet (socket.bytesWritten === 0).
if (opts.service !== null) process.env.NETCORE_SERVICE = opts.service;
const handoff = opts.group !== null || opts.service !== null;
const sockets = new Set();
const counts = { connections: 0, adopted: 0 };

const server = net.createServer({ endpoint: opts.endpoint || undefined }, (c) => {
  counts.connections += 1;
  if (c.adopted) counts.adopted += 1;
  sockets.add(c);
  c.on('close', () => sockets.delete(c));
  c.on('error', () => {}); // a peer's reset ends that connection only
  // An adopted peer was greeted already, unless nothing was ever written to
  // it (its old echo died before the greeting reached netcore): bytesWritten
  // starts at what the old owner wrote or had queued in netcore.
  if (!c.adopted || c.bytesWritten === 0) c.write('hello\r\n');
  if (opts['via-handler']) {
    c.on('data', (chunk) => {
      if (!c.write(chunk)) c.pause();
    });
    c.on('drain', () => c.resume());
  } else {
    c.pipe(c);
  }
});

server.on('error', (err) => {
  // netcore drains and closes every connection itself: not a failure.
  if (err.code === 'ERR_NETCORE_SHUTDOWN') return;
  process.stderr.write(`echo: ${err.code}: ${err.message}\n`);
  process.exit(1);
});

const onListening = () => {
  const a = server.address();
  const shown = typeof a === 'string' ? { address: a } : { address: a.address, port: a.port };
  process.stdout.write(`echo server listening on ${JSON.stringify(shown)}\n`);
};
const where = opts.path !== null ? { path: opts.path } : { port: opts.port, host: opts.host };
if (opts.group !== null) where.group = opts.group;
// Every 'listening': again after netcore restarted (the library listens again).
server.on('listening', onListening);
server.listen(where);

function stop() {
  // Exit once the server and its connections are closed; the link to
  // netcore then says Bye and the event loop empties. Never wait forever.
  const fallback = setTimeout(() => process.exit(0), 3000);
  server.close(() => {
    clearTimeout(fallback);
    process.exitCode = 0;
  });
  for (const c of sockets) c.destroy();
}
// With a group or a service, a signal hands the connections over instead.
function leave() {
  net.leave({ handoff: true }).then(() => process.exit(0));
}
process.on('SIGUSR1', () => {
  process.stdout.write(`echo connections ${counts.connections} adopted ${counts.adopted}\n`);
});
process.once('SIGINT', handoff ? leave : stop);
process.once('SIGTERM', handoff ? leave : stop);
