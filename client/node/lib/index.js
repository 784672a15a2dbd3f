'use strict';
// netcore-net: Node's `net` module, with the sockets owned by the netcore
// daemon and driven over ZeroMQ. Use it where you would use require('net'):
//
//   const net = require('netcore-net');
//   net.createServer((c) => { c.write('hello\r\n'); c.pipe(c); }).listen(8124, 'localhost');
//
// The connection to netcore is made on first use: the `endpoint` option of
// createServer/Socket/createConnection, else NETCORE_ENDPOINT, else
// defaultEndpoint() ($XDG_RUNTIME_DIR/netcore/netcore.sock, see link.js).

const nodeNet = require('net');
const { Server } = require('./server');
const { Socket, normalizeConnectArgs } = require('./socket');
const { Link, defaultEndpoint, leaveAll } = require('./link');

// netcore's numbers over the handler link (the Stats command): a Promise of
// { instance_id, uptime_ms, families } with the series of its /metrics.
// options.endpoint as for createServer.
function stats(options) {
  return Link.get(options && options.endpoint).stats();
}

// Node's net.Server(), net.Socket() and net.Stream() work without `new`;
// classes do not, so the exported constructors are callable proxies of them
// (instanceof, subclassing and statics are the class's own).
const callable = (C) => new Proxy(C, { apply: (target, self, args) => new target(...args) });
const ServerFn = callable(Server);
const SocketFn = callable(Socket);

function createServer(options, connectionListener) {
  return new Server(options, connectionListener);
}

// createConnection(port, [host], [cb]) | (path, [cb]) | (options, [cb])
function createConnection(...args) {
  const [opts, cb] = normalizeConnectArgs(args);
  const socket = new Socket(opts);
  return cb ? socket.connect(opts, cb) : socket.connect(opts);
}

module.exports = {
  createServer,
  createConnection,
  connect: createConnection,
  Server: ServerFn,
  Socket: SocketFn,
  Stream: SocketFn, // Node's legacy alias
  // Node's own implementation: the ACCEPTANCE table is today's Node.
  isIP: nodeNet.isIP,
  isIPv4: nodeNet.isIPv4,
  isIPv6: nodeNet.isIPv6,
  defaultEndpoint, // netcore-net's own: the endpoint used when none is given
  // netcore-net's own: every link says Bye{handoff} (or a plain Bye), so a
  // group member or a successor under $NETCORE_SERVICE adopts the
  // connections; resolves once the Byes have left (PROTOCOL.md 13).
  leave: (opts) => leaveAll(!opts || opts.handoff !== false),
  stats, // netcore-net's own: netcore's metrics (Stats command)
};
