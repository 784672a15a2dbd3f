'use strict';
// keys.js: CURVE keys for the link to netcore: netcore's public key and this
// handler's key pair, from the serverKey / secretFile options or the
// environment (NETCORE_SERVER_KEY, NETCORE_SECRET_FILE).
//
// The key pair file is the one `netcore keygen FILE` writes, parsed by the
// same rules as libnc's (common/keyfile.c):
//     # netcore CURVE key pair (Z85). Keep this file secret.
//     public-key = "<40 Z85 chars>"
//     secret-key = "<40 Z85 chars>"
// Blank lines and '#' lines are ignored, spaces around '=' are optional, and a
// public key that does not belong to its secret key is refused. Every problem
// is an EINVAL error (thrown) with a message naming the file and line, as
// libnc's nc_loop_new reports it. Synchronous (read once per link).

const crypto = require('crypto');
const fs = require('fs');
const { ncError } = require('./errors');

const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
const Z85_KEY_LEN = 40;
const ASSIGN = /^[ \t]*([^ \t=]*)[ \t]*=[ \t]*"([^"]*)"[ \t\r]*$/;
// PKCS#8 prefix of a raw X25519 private key, to derive its public key.
const X25519_PKCS8 = Buffer.from('302e020100300506032b656e04220420', 'hex');

// The 32 bytes of a Z85 key, or null if s is not one.
function z85Decode(s) {
  if (typeof s !== 'string' || s.length !== Z85_KEY_LEN) return null;
  const out = Buffer.alloc(32);
  for (let i = 0; i < 8; i++) {
    let v = 0;
    for (let j = 0; j < 5; j++) {
      const d = Z85.indexOf(s[i * 5 + j]);
      if (d < 0) return null;
      v = v * 85 + d;
    }
    if (v > 0xffffffff) return null;
    out.writeUInt32BE(v, i * 4);
  }
  return out;
}

function z85Encode(buf) {
  let s = '';
  for (let i = 0; i < buf.length; i += 4) {
    let v = buf.readUInt32BE(i);
    const chunk = [];
    for (let j = 0; j < 5; j++) {
      chunk.unshift(Z85[v % 85]);
      v = Math.floor(v / 85);
    }
    s += chunk.join('');
  }
  return s;
}

function einval(message) {
  const err = ncError('EINVAL', { message });
  err.message = `EINVAL: ${message}`;
  return err;
}

// { publicKey, secretKey } (Z85) of the key pair file at path.
function readKeyFile(path) {
  let text;
  try {
    text = fs.readFileSync(path, 'latin1');
  } catch (e) {
    throw einval(`this handler's key pair: cannot open key pair file ${path}: ${e.code}`);
  }
  const keys = {};
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  lines.forEach((line, i) => {
    const t = line.replace(/^[ \t]+/, '');
    if (t === '' || t[0] === '#' || t[0] === '\r') return;
    const m = ASSIGN.exec(line);
    if (!m || (m[1] !== 'public-key' && m[1] !== 'secret-key')) {
      throw einval(`this handler's key pair: ${path}:${i + 1}: expected public-key = "..." or secret-key = "..."`);
    }
    if (!z85Decode(m[2])) {
      throw einval(`this handler's key pair: ${path}:${i + 1}: ${m[1]} is not a ${Z85_KEY_LEN}-character Z85 CURVE key`);
    }
    keys[m[1]] = m[2];
  });
  if (!keys['public-key'] || !keys['secret-key']) {
    throw einval(`this handler's key pair: ${path}: needs both public-key and secret-key (as \`netcore keygen\` writes)`);
  }
  const priv = crypto.createPrivateKey({
    key: Buffer.concat([X25519_PKCS8, z85Decode(keys['secret-key'])]),
    format: 'der',
    type: 'pkcs8',
  });
  const derived = z85Encode(Buffer.from(crypto.createPublicKey(priv).export({ format: 'jwk' }).x, 'base64url'));
  if (derived !== keys['public-key']) {
    throw einval(`this handler's key pair: ${path}: its public-key does not belong to its secret-key`);
  }
  return { publicKey: keys['public-key'], secretKey: keys['secret-key'] };
}

// { serverKey, publicKey, secretKey } for a tcp:// endpoint, or null when no
// key is given (options, else the environment). Checked for every endpoint,
// used on tcp:// only: netcore authenticates ipc peers by uid.
function curveKeys(endpoint, serverKey, secretFile) {
  if (serverKey === undefined || serverKey === null) serverKey = process.env.NETCORE_SERVER_KEY;
  if (secretFile === undefined || secretFile === null) secretFile = process.env.NETCORE_SECRET_FILE;
  serverKey = serverKey || null;
  secretFile = secretFile || null;
  if (!serverKey && !secretFile) return null;
  if (!serverKey || !secretFile) {
    throw einval(
      "CURVE needs both netcore's public key (serverKey or NETCORE_SERVER_KEY) and this handler's key pair " +
        `file (secretFile or NETCORE_SECRET_FILE); only the ${serverKey ? 'public key' : 'key pair file'} is set`,
    );
  }
  if (!z85Decode(serverKey)) {
    throw einval(
      "netcore's public key (serverKey or NETCORE_SERVER_KEY) is not a CURVE key: it must be the 40 Z85 " +
        'characters `netcore keygen` prints',
    );
  }
  const pair = readKeyFile(String(secretFile));
  if (!endpoint.startsWith('tcp://')) return null;
  return { serverKey, ...pair };
}

module.exports = { curveKeys, readKeyFile, z85Decode };
