'use strict';
// errors.js: Node-style error objects for codes that netcore sends by name.
//
// The one table of names, numbers and default messages is the C header
// common/include/nc_errors.h; it is read once at load time so that this
// library and libnc can never disagree. Errors look like Node's own: `code`
// is the wire name ("ECONNREFUSED"), `errno` the negative number, `syscall`
// the operation, and `address`/`port` where Node would set them.

const fs = require('fs');
const os = require('os');
const path = require('path');

// A packed copy (npm pack puts it beside package.json), else the repository's.
const PACKED_TABLE = path.join(__dirname, '..', 'nc_errors.h');
const TABLE_PATH = fs.existsSync(PACKED_TABLE) ? PACKED_TABLE
  : path.join(__dirname, '..', '..', '..', 'common', 'include', 'nc_errors.h');

// name -> { errno, message }
const table = new Map();

function loadTable() {
  let text;
  try {
    text = fs.readFileSync(TABLE_PATH, 'utf8');
  } catch {
    return; // a copy of the library without the C tree: codes still work, messages are generic
  }
  const re = /XX\(\s*([A-Z_0-9]+)\s*,\s*(-?[A-Z_0-9]+)\s*,\s*"([^"]*)"\s*\)/g;
  let m;
  while ((m = re.exec(text)) !== null) {
    const [, name, num, message] = m;
    let errno;
    if (/^-?\d+$/.test(num)) errno = Number(num);
    else if (os.constants.errno[num.replace(/^-/, '')] !== undefined) errno = -os.constants.errno[num.replace(/^-/, '')];
    table.set(name, { errno, message });
  }
}
loadTable();

// Default human-readable text for a code ("connection refused").
function describe(code) {
  const e = table.get(code);
  return e ? e.message : code;
}

// Builds an Error the way Node's libuv errors look:
//   `${syscall} ${code}${detail}` with .code, .errno, .syscall set.
// `extra` may carry address/port/path/hostname, copied onto the error.
function ncError(code, opts = {}) {
  const { syscall, message, address, port, hostname } = opts;
  let text;
  if (syscall === 'getaddrinfo') {
    text = `getaddrinfo ${code} ${hostname}`;
  } else if (syscall) {
    text = `${syscall} ${code}`;
    if (syscall === 'listen') text += `: ${message || describe(code)}`;
    if (address !== undefined) text += port !== undefined && port !== null ? ` ${address}:${port}` : ` ${address}`;
  } else {
    text = `${code}: ${message || describe(code)}`;
  }
  const err = new Error(text);
  err.code = code;
  const e = table.get(code);
  if (e && e.errno !== undefined) err.errno = e.errno;
  if (syscall) err.syscall = syscall;
  if (hostname !== undefined) err.hostname = hostname;
  if (address !== undefined && syscall !== 'getaddrinfo') err.address = address;
  if (port !== undefined && port !== null) err.port = port;
  if (message && syscall && syscall !== 'listen') err.detail = message;
  return err;
}

// Errors that Node throws synchronously from argument checks (RangeError /
// TypeError with a code), e.g. ERR_SOCKET_BAD_PORT.
function argError(Ctor, code, text) {
  const err = new Ctor(text);
  err.code = code;
  return err;
}

module.exports = { ncError, argError, describe };
