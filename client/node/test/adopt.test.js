'use strict';
// A connection adopted from a handler that died (PROTOCOL.md 13): in the
// 'connection' listener socket.adopted is true and bytesWritten already
// counts the old owner's writes (Adopted.bytes_written + queued_bytes), so
// a handler can tell a peer that was written to from one that was not. The
// old owner is another Node.js process on the same library, killed (kill -9)
// after its greeting reached the kernel, or before it wrote anything.

const { test, before, after } = require('node:test');
const assert = require('node:assert');
const path = require('path');
const { spawn } = require('child_process');
const readline = require('readline');
const nodeNet = require('net');
const net = require('..');
const { startNetcore, once, until, collect } = require('../test-support/netcore');

let nc;
before(async () => {
  nc = await startNetcore();
  process.env.NETCORE_ENDPOINT = nc.endpoint;
});
after(async () => {
  await nc.stop();
});

// The old owner: listens in group g, writes GREETING (if any) on each
// connection, and prints "port N" once listening and "c" per connection
// (after its greeting's callback: the bytes reached the kernel).
const OWNER = `
const net = require(process.argv[1]);
const greeting = process.env.GREETING;
const server = net.createServer((c) => {
  c.on('error', () => {});
  if (greeting) c.write(greeting, () => process.stdout.write('c\\n'));
  else process.stdout.write('c\\n');
});
server.listen({ port: 0, host: '127.0.0.1', group: 'g' },
  () => process.stdout.write('port ' + server.address().port + '\\n'));
`;

async function adopt(greeting) {
  const owner = spawn(process.execPath, ['-e', OWNER, path.join(__dirname, '..')], {
    env: { ...process.env, GREETING: greeting },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((resolve) => owner.once('exit', resolve));
  const lines = [];
  readline.createInterface({ input: owner.stdout }).on('line', (l) => lines.push(l));
  try {
    await until(() => lines.length > 0, "the owner's listening line");
    const port = Number(lines[0].replace(/^port /, ''));
    assert.ok(port > 0, lines[0]);
    const client = nodeNet.createConnection(port, '127.0.0.1');
    const got = collect(client);
    await once(client, 'connect');
    await until(() => lines.includes('c'), "the owner's connection");

    const seen = {};
    const heir = net.createServer((c) => {
      seen.adopted = c.adopted;
      seen.atAdoption = c.bytesWritten;
      c.write('more');
      seen.afterWrite = c.bytesWritten;
      c.end();
    });
    await once(heir.listen({ port, host: '127.0.0.1', group: 'g' }), 'listening');
    owner.kill('SIGKILL'); // the heir, the group's live member, adopts the connection
    await exited;
    await got.ended;
    client.destroy();
    await new Promise((resolve) => heir.close(resolve));
    assert.strictEqual(seen.adopted, true);
    assert.strictEqual(seen.atAdoption, greeting.length);
    assert.strictEqual(seen.afterWrite, greeting.length + 4);
    assert.strictEqual(got.buffer.toString(), `${greeting}more`);
  } finally {
    if (owner.exitCode === null && owner.signalCode === null) owner.kill('SIGKILL');
  }
}

test('adopted after the old owner wrote: bytesWritten counts its bytes', async () => {
  await adopt('hello\r\n');
});

test('adopted before the old owner wrote anything: bytesWritten is 0', async () => {
  await adopt('');
});
