'use strict';
// isIP / isIPv4 / isIPv6: the ACCEPTANCE table (today's Node).

const { test } = require('node:test');
const assert = require('node:assert');
const net = require('..');

const v4 = ['127.0.0.1'];
const v6 = [
  '0000:0000:0000:0000:0000:0000:0000:0000', '1050:0:0:0:5:600:300c:326b', '2001:252:0:1::2008:6',
  '2001:dead:beef:1::2008:6', '2001::', '2001:dead::', '2001:dead:beef::', '2001:dead:beef:1::',
  'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', '::2001:252:1:2008:6', '::2001:252:1:1.1.1.1',
  '::2001:252:1:255.255.255.255', '::1', '::', '::ffff:127.0.0.1', 'fe80::1%eth0',
];
const none = [
  'x127.0.0.1', 'example.com', '0000:0000:0000:0000:0000:0000:0000:0000::0000', ':2001:252:0:1::2008:6:',
  ':2001:252:0:1::2008:6', '2001:252:0:1::2008:6:', '2001:252::1::2008:6', '::2001:252:1:255.255.255.255.76',
  '::anything', '0000:0000:0000:0000:0000:0000:12345:0000', '0', '', null, '127.000.000.001', '01.2.3.4',
  '1.2.3', '256.0.0.0', ' 127.0.0.1', '0x7f.0.0.1', '1.2.3.4.5',
];

test('isIP follows the table', () => {
  for (const a of v4) assert.strictEqual(net.isIP(a), 4, a);
  for (const a of v6) assert.strictEqual(net.isIP(a), 6, a);
  for (const a of none) assert.strictEqual(net.isIP(a), 0, String(a));
});

test('isIPv4 and isIPv6 agree with isIP', () => {
  for (const a of [...v4, ...v6, ...none]) {
    assert.strictEqual(net.isIPv4(a), net.isIP(a) === 4, String(a));
    assert.strictEqual(net.isIPv6(a), net.isIP(a) === 6, String(a));
  }
  assert.strictEqual(net.isIPv4(null), false);
  assert.strictEqual(net.isIPv6(''), false);
});
