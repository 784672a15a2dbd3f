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
// The events of every request (Data, Ended, WriteAck, each with its lazy
// ack, and the EventBatch that carries them) are read by hand (fastEvent):
// no protobufjs reader, no Long per integer. Every other event, and any
// frame the hand reader does not take, goes through protobufjs.
function decodeEvent(buf) {
  let ev = null;
  try {
    ev = fastEvent(buf, 0, buf.length, true);
  } catch (err) {
    ev = null; // malformed: protobufjs says how
  }
  return ev === null ? Event.decode(buf) : ev;
}

// What the hand reader gives, in the shapes protobufjs gives them (field
// names of the .proto, `event` naming the oneof member, ack null when
// absent) except that integers are Numbers and ids BigInt (both are what
// toNum and toBig accept). Messages of the hot events carry uint64 fields
// only; counts are exact below 2^53, ids always.
let at = 0; // the reader's position in the buffer being read
let vhi = 0; // the high 32 bits of the last varint read

// A varint at `at` (before `end`): its low 32 bits, unsigned; vhi its high ones.
function varint(buf, end) {
  let lo = 0;
  let b;
  for (let shift = 0; shift < 28; shift += 7) {
    if (at >= end) throw new RangeError('truncated varint');
    b = buf[at++];
    lo |= (b & 0x7f) << shift;
    if (b < 0x80) {
      vhi = 0;
      return lo >>> 0;
    }
  }
  if (at >= end) throw new RangeError('truncated varint');
  b = buf[at++];
  lo |= (b & 0x0f) << 28;
  let hi = (b & 0x7f) >>> 4;
  for (let shift = 3; b >= 0x80; shift += 7) {
    if (shift > 31 || at >= end) throw new RangeError('bad varint');
    b = buf[at++];
    hi |= (b & 0x7f) << shift;
  }
  vhi = hi >>> 0;
  return lo >>> 0;
}

function varintNum(buf, end) {
  const lo = varint(buf, end);
  return vhi === 0 ? lo : vhi * 4294967296 + lo;
}

// An id (uint64) as a BigInt. The ids of a link share their high 32 bits
// (Welcome.id_prefix), so the BigInt of each low half is kept: making one
// costs more than the rest of an event's decoding. Bounded: cleared when full.
const ids = new Map(); // low 32 bits -> { hi, big }
const IDS_MAX = 65536;
function varintBig(buf, end) {
  const lo = varint(buf, end);
  const hi = vhi;
  const known = ids.get(lo);
  if (known !== undefined && known.hi === hi) return known.big;
  const big = hi === 0 ? BigInt(lo) : (BigInt(hi) << 32n) | BigInt(lo);
  if (ids.size >= IDS_MAX) ids.clear();
  ids.set(lo, { hi, big });
  return big;
}

// Skips a field of wire type `wt` (not 3/4: groups are never sent).
function skip(buf, end, wt) {
  if (wt === 0) varint(buf, end);
  else if (wt === 1) at += 8;
  else if (wt === 5) at += 4;
  else if (wt === 2) {
    const len = varint(buf, end);
    at += len;
  } else throw new RangeError(`wire type ${wt}`);
  if (at > end) throw new RangeError('truncated field');
}

// A length-delimited field's end (at is then its first byte).
function subEnd(buf, end) {
  const len = varint(buf, end);
  const e = at + len;
  if (e > end) throw new RangeError('truncated message');
  return e;
}

// Data, Ended (socket_id = 1 only) and WriteAck, over buf[at, end).
function idOnly(buf, end) {
  const body = { socket_id: 0n };
  while (at < end) {
    const tag = varint(buf, end);
    if (tag === 0x08) body.socket_id = varintBig(buf, end);
    else skip(buf, end, tag & 7);
  }
  return body;
}

function writeAck(buf, end) {
  const a = { socket_id: 0n, writes: 0, bytes: 0, bytes_written: 0, queued_bytes: 0 };
  while (at < end) {
    const tag = varint(buf, end);
    switch (tag) {
      case 0x08: a.socket_id = varintBig(buf, end); break;
      case 0x10: a.writes = varint(buf, end); break;
      case 0x18: a.bytes = varintNum(buf, end); break;
      case 0x20: a.bytes_written = varintNum(buf, end); break;
      case 0x28: a.queued_bytes = varintNum(buf, end); break;
      default: skip(buf, end, tag & 7);
    }
  }
  return a;
}

// One Event over buf[from, end), or null if it is not one of the hot ones
// (outer: an EventBatch may be it; inside a batch the caller decodes that
// event with protobufjs).
function fastEvent(buf, from, end, outer) {
  at = from;
  const ev = { seq: 0, ack: null, event: undefined };
  while (at < end) {
    const tag = varint(buf, end);
    if (tag === 0x08) {
      ev.seq = varintNum(buf, end);
      continue;
    }
    if ((tag & 7) !== 2 || ev.event !== undefined) return null;
    const e = subEnd(buf, end);
    switch (tag >>> 3) {
      case 2: ev.ack = writeAck(buf, e); break;
      case 31: ev.event = 'data'; ev.data = idOnly(buf, e); break;
      case 32: ev.event = 'ended'; ev.ended = idOnly(buf, e); break;
      case 33: ev.event = 'write_ack'; ev.write_ack = writeAck(buf, e); break;
      case 50:
        if (!outer) return null;
        ev.event = 'batch';
        ev.batch = { events: batch(buf, e) };
        break;
      default:
        return null;
    }
  }
  return ev.event === undefined ? null : ev;
}

// EventBatch{repeated Event events = 1} over buf[at, end).
function batch(buf, end) {
  const events = [];
  while (at < end) {
    const tag = varint(buf, end);
    if (tag !== 0x0a) {
      skip(buf, end, tag & 7);
      continue;
    }
    const e = subEnd(buf, end);
    const from = at;
    const ev = fastEvent(buf, from, e, false);
    events.push(ev === null ? Event.decode(buf.subarray(from, e)) : ev);
    at = e;
  }
  return events;
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
