'use strict';
// protocol.js: the netcore.v1 messages, loaded at run time from
// proto/netcore.proto (the contract; no generated code is kept; the npm
// package ships a copy of it), plus the
// conversions between protobuf's 64-bit integers and BigInt.
//
// Field names keep the .proto spelling (socket_id, not socketId) so code can
// be read side by side with PROTOCOL.md. Ids are BigInt everywhere in this
// library: uint64 ids round-trip exactly, which Number cannot promise.

const fs = require('fs');
const path = require('path');
const { isUtf8 } = require('buffer');
const protobuf = require('protobufjs');

const Long = protobuf.util.Long;
// A packed copy (npm pack puts it beside package.json), else the repository's.
const PACKED_PROTO = path.join(__dirname, '..', 'netcore.proto');
const PROTO_PATH = process.env.NETCORE_PROTO
  || (fs.existsSync(PACKED_PROTO) ? PACKED_PROTO : path.join(__dirname, '..', '..', '..', 'proto', 'netcore.proto'));

const root = new protobuf.Root();
root.loadSync(PROTO_PATH, { keepCase: true });
const Command = root.lookupType('netcore.v1.Command');
const Event = root.lookupType('netcore.v1.Event');
const Family = root.lookupEnum('netcore.v1.Family').values;
const UnpipeReason = root.lookupEnum('netcore.v1.UnpipeReason').values;

const MASK32 = 0xffffffffn;

// uint64 from a decoded message (Long or number) -> BigInt.
function toBig(v) {
  if (v === undefined || v === null) return 0n;
  if (typeof v === 'number') return BigInt(v);
  if (typeof v === 'bigint') return v;
  return (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
}

// uint64 byte count from a decoded message (Long or number) -> Number
// (exact up to 2^53 bytes).
function toNum(v) {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  return v.toNumber();
}

// BigInt -> unsigned Long for encoding.
function toLong(b) {
  return Long.fromBits(Number(b & MASK32), Number((b >> 32n) & MASK32), true);
}

// Serializes one Command given as a plain object ({ listen: {...} }).
function encodeCommand(obj) {
  return Command.encode(Command.fromObject(obj)).finish();
}

// The commands of every request, Write and Credit, packed by hand: no
// protobufjs message object and no Long per command (their garbage was a
// tenth of a via-handler echo's time). Same bytes as encodeCommand gives.
// idVarint: the socket id as a varint (idVarint(), kept per socket).
function idVarint(b) {
  const out = [];
  let lo = Number(b & MASK32);
  let hi = Number((b >> 32n) & MASK32);
  while (hi) {
    out.push((lo & 0x7f) | 0x80);
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  while (lo > 0x7f) {
    out.push((lo & 0x7f) | 0x80);
    lo >>>= 7;
  }
  out.push(lo);
  return Buffer.from(out);
}

// Command{write = 31: Write{socket_id = 1, fd_socket_id = 2, ack_now = 3}}.
function packWrite(id, fd, ackNow) {
  const inner = 1 + id.length + (fd ? 1 + fd.length : 0) + (ackNow ? 2 : 0);
  const out = Buffer.allocUnsafe(3 + inner);
  out[0] = 0xfa; // (31 << 3) | 2 as a varint: 0xfa 0x01
  out[1] = 0x01;
  out[2] = inner; // < 128
  out[3] = 0x08;
  id.copy(out, 4);
  let at = 4 + id.length;
  if (fd) {
    out[at++] = 0x10;
    fd.copy(out, at);
    at += fd.length;
  }
  if (ackNow) {
    out[at++] = 0x18;
    out[at] = 1;
  }
  return out;
}

// Command{credit = 36: Credit{socket_id = 1, bytes = 2}}; bytes < 2^32.
function packCredit(id, bytes) {
  let n = bytes >>> 0;
  let len = 1;
  while (n > 0x7f) {
    n >>>= 7;
    len += 1;
  }
  const inner = 2 + id.length + len;
  const out = Buffer.allocUnsafe(3 + inner);
  out[0] = 0xa2; // (36 << 3) | 2: 0xa2 0x02
  out[1] = 0x02;
  out[2] = inner;
  out[3] = 0x08;
  id.copy(out, 4);
  let at = 4 + id.length;
  out[at++] = 0x10;
  n = bytes >>> 0;
  while (n > 0x7f) {
    out[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  out[at] = n;
  return out;
}

// Parses one Event envelope; throws on a frame that does not parse.
function decodeEvent(buf) {
  return Event.decode(buf);
}

// A UNIX path (string or Buffer) as the endpoint fields of Listen/Connect:
// `path` when it is UTF-8, else its exact bytes as `path_bytes` (PROTOCOL.md 1.2).
// A relative path is this process's, so it is resolved against our working
// directory first: netcore's own would be a different place. (A path that
// starts with NUL is Linux's abstract namespace and stays as it is.)
function pathEndpoint(p) {
  if (!Buffer.isBuffer(p)) {
    const s = String(p);
    return { path: s.startsWith('/') || s.startsWith('\0') ? s : path.resolve(s) };
  }
  if (p.length > 0 && p[0] !== 0x2f && p[0] !== 0) p = Buffer.concat([Buffer.from(`${process.cwd()}/`), p]);
  return isUtf8(p) ? { path: p.toString('utf8') } : { path_bytes: p };
}

// A path for messages and errors: a Buffer decoded as Node decodes paths.
function pathText(p) {
  return Buffer.isBuffer(p) ? p.toString('utf8') : p;
}

// Address message -> { address, family, port } the way Node reports it. A
// UNIX path that is not UTF-8 comes as address_bytes; like Node's own
// address() it is decoded as UTF-8 (U+FFFD for what is not).
function nodeAddress(a) {
  if (!a) return null;
  if (a.family === Family.FAMILY_UNIX) {
    const address = a.address_bytes && a.address_bytes.length ? Buffer.from(a.address_bytes).toString('utf8') : a.address;
    return { address, family: 'unix', port: undefined };
  }
  return {
    address: a.address,
    family: a.family === Family.FAMILY_IPV6 ? 'IPv6' : 'IPv4',
    port: a.port,
  };
}

module.exports = {
  toBig, toLong, toNum, encodeCommand, decodeEvent, nodeAddress, pathEndpoint, pathText,
  UnpipeReason, idVarint, packWrite, packCredit,
};
