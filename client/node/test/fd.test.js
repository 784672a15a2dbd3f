'use strict';
// fd passing over a UNIX socket (the seed's write(data, fd) and 'fd'): fds
// never leave netcore; a handler names one of its sockets and the receiver
// gets a new socket wrapping the copy.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('path');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, once, until } = require('../test-support/netcore');

let nc;
before(async () => {
  nc = await startNetcore();
  process.env.NETCORE_ENDPOINT = nc.endpoint;
});
after(async () => {
  await nc.stop();
});

test("write(data, fd) delivers the fd: 'fd' event with a socket to the same peer", async () => {
  // The socket whose fd travels: connected to a plain Node server.
  const upstreamGot = [];
  const upstream = nodeNet.createServer((c) => c.on('data', (d) => upstreamGot.push(d.toString())));
  await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
  const carried = net.createConnection(upstream.address().port, '127.0.0.1');
  await once(carried, 'connect');

  // A UNIX connection to send it over.
  const p = path.join(nc.dir, 'fd.sock');
  let receiver;
  const received = [];
  const server = net.createServer((c) => {
    receiver = c;
    c.on('fd', (s) => received.push(s));
    c.setEncoding('utf8');
    c.on('data', (d) => {
      c.text = (c.text || '') + d;
    });
  });
  await once(server.listen(p), 'listening');
  const sender = net.createConnection(p);
  await once(sender, 'connect');
  let cbErr = 'not called';
  sender.write('here is an fd', carried, (e) => {
    cbErr = e;
  });
  await until(() => received.length === 1 && receiver.text === 'here is an fd', 'fd and data');
  assert.strictEqual(cbErr, null);
  const copy = received[0];
  assert.ok(copy instanceof net.Socket);
  assert.strictEqual(copy.remotePort, upstream.address().port);
  copy.write('via the copy');
  await until(() => upstreamGot.join('') === 'via the copy', 'data through the passed fd');

  assert.throws(() => sender.write('', carried), { code: 'EINVAL' });
  for (const s of [copy, carried, sender]) s.destroy();
  await new Promise((r) => server.close(r));
  upstream.close();
});
