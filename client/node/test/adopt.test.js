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
// (after its greeting's callback: the bytes reached the kernel). With BIG
// it then writes BIG bytes more that the paused client cannot take, and
// prints "q N" once netcore holds them (N: netcore's write queue bytes,
// asked by stats() until it is above 0; commands go in order, so the
// Writes reached netcore before that Stats).
const OWNER = `
const net = require(process.argv[1]);
const greeting = process.env.GREETING;
const big = Number(process.env.BIG || 0);
const queued = async () => {
  for (;;) {
    const st = await net.stats();
    const f = st.families.find((x) => x.name === 'netcore_write_queue_bytes');
    const n = f ? f.samples[0].value : 0;
    if (n > 0) return n;
    await new Promise((r) => setTimeout(r, 20));
  }
};
const server = net.createServer((c) => {
  c.on('error', () => {});
  if (greeting) c.write(greeting, () => process.stdout.write('c\\n'));
  else process.stdout.write('c\\n');
  if (big) {
    c.write(Buffer.alloc(big, 'b'));
    queued().then((n) => process.stdout.write('q ' + n + '\\n'));
  }
});
server.listen({ port: 0, host: '127.0.0.1', group: 'g' },
  () => process.stdout.write('port ' + server.address().port + '\\n'));
`;

async function adopt(greeting, big = 0) {
  const owner = spawn(process.execPath, ['-e', OWNER, path.join(__dirname, '..')], {
    env: { ...process.env, GREETING: greeting, BIG: String(big) },
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
    if (big) client.pause(); // reads nothing until the heir ended it
    const got = collect(client);
    await once(client, 'connect');
    await until(() => lines.includes('c'), "the owner's connection");
    if (big) await until(() => lines.some((l) => l.startsWith('q ')), 'netcore holding the big write');

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
    if (big) {
      await until(() => seen.adopted !== undefined, 'the adoption');
      client.resume();
    }
    await got.ended;
    client.destroy();
    await new Promise((resolve) => heir.close(resolve));
    assert.strictEqual(seen.adopted, true);
    assert.strictEqual(seen.atAdoption, greeting.length + big);
    assert.strictEqual(seen.afterWrite, greeting.length + big + 4);
    const all = got.buffer;
    assert.strictEqual(all.length, greeting.length + big + 4);
    assert.strictEqual(all.toString('latin1'), `${greeting}${'b'.repeat(big)}more`);
  } finally {
    if (owner.exitCode === null && owner.signalCode === null) owner.kill('SIGKILL');
  }
}

test('adopted after the old owner wrote: bytesWritten counts its bytes', async () => {
  await adopt('hello\r\n');
});

// Adopted.queued_bytes > 0: netcore still held part of the old owner's
// writes (the client read nothing); they reach the client before the heir's.
test("adopted with the old owner's bytes still queued in netcore: bytesWritten counts them", async () => {
  await adopt('hello\r\n', 7 * 1024 * 1024);
});

test('adopted before the old owner wrote anything: bytesWritten is 0', async () => {
  await adopt('');
});
