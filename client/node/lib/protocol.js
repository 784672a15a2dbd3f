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

module.exports = { toBig, toLong, toNum, encodeCommand, decodeEvent, nodeAddress, pathEndpoint, pathText, UnpipeReason };
