'use strict';
// socket.js: net.Socket over netcore. A real stream.Duplex, as Node's own
// net.Socket is, so write()/'drain', pipe(), setEncoding(), 'end'/'finish',
// allowHalfOpen and stream.pipeline() behave exactly like Node's: they are
// Node's code. This file only maps the Duplex hooks onto the protocol:
//
//   _writev -> Write commands, pipelined (a write never waits for the ack
//              of the one before); each write's callback runs when netcore's
//              WriteAcks say its bytes reached the kernel, and bufferSize,
//              write()'s return value and 'drain' follow those acks;
//   _final  -> End; 'finish' once its ack arrives (the FIN was sent);
//   read()  -> read credit given back as the application consumes data;
//   pause() / resume() -> Pause / Resume (reading stops at once);
//   _destroy -> Destroy; 'close' when netcore's Closed arrives;
//   pipe()   -> Node's pipe, and Pipe when netcore can move the bytes itself
//               (lib/pipe.js: when it applies, and how the stream comes back).
//
// A socket belongs to one link (lib/link.js); all its events come from there.

const nodeNet = require('net');
const { Duplex } = require('stream');
const pipes = require('./pipe');
const { Link, linkOptions } = require('./link');
const {
  toBig, toLong, toNum, nodeAddress, pathEndpoint, pathText, idVarint, packWrite, packCredit,
} = require('./protocol');
const { ncError, argError } = require('./errors');

const HIGH_WATER_MARK = 16 * 1024; // Node's default for sockets
// The Writable's own high-water mark. The library keeps write()'s return
// value and 'drain' itself, from the acknowledged bytes (see write()), so
// the Writable must never decide them from its own count.
const NO_LIMIT = Number.MAX_SAFE_INTEGER;
// Pieces smaller than SMALL_PIECE that are queued together go in one Write
// of at most MERGE_MAX bytes.
const SMALL_PIECE = 16 * 1024;
const MERGE_MAX = 64 * 1024;
const isSmall = (p) => !p.end && !p.fd && p.buf.length < SMALL_PIECE;

// Buffers written with write(data, fd): the netcore socket whose fd goes
// with them. Keyed by the Buffer object handed to the Writable.
const fdOf = new WeakMap();

// Node's "Received ..." part of ERR_INVALID_ARG_TYPE.
function describeArg(v) {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'function') return `function ${v.name}`;
  if (typeof v === 'object') return `an instance of ${(v.constructor && v.constructor.name) || 'Object'}`;
  let shown = require('util').inspect(v);
  if (shown.length > 28) shown = `${shown.slice(0, 25)}...`;
  return `type ${typeof v} (${shown})`;
}

function validatePort(port) {
  const n = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw argError(RangeError, 'ERR_SOCKET_BAD_PORT', `Port should be >= 0 and < 65536. Received ${String(port)}.`);
  }
  return n;
}

// connect(port, [host], [cb]) | connect(path, [cb]) | connect(options, [cb])
function normalizeConnectArgs(args) {
  const a = [...args];
  const cb = typeof a[a.length - 1] === 'function' ? a.pop() : null;
  let opts;
  if (Buffer.isBuffer(a[0])) opts = { path: a[0] };
  else if (a[0] !== null && typeof a[0] === 'object') opts = { ...a[0] };
  else if (typeof a[0] === 'string' && !/^\s*\d+\s*$/.test(a[0])) opts = { path: a[0] };
  else opts = { port: a[0], host: a[1] };
  return [opts, cb];
}

// The nextTick of _schedulePump (no closure per turn).
function pumpTick(sock) {
  sock._pumpQueued = false;
  sock._pump();
}

const EMPTY = Buffer.alloc(0); // the payload of an empty Write (unref() asks an ack with it)

class Socket extends Duplex {
  constructor(options = {}) {
    super({
      allowHalfOpen: Boolean(options.allowHalfOpen),
      emitClose: false, // 'close' carries had_error and waits for netcore's Closed
      autoDestroy: true,
      decodeStrings: true,
      readableHighWaterMark: options.highWaterMark ?? HIGH_WATER_MARK,
      writableHighWaterMark: NO_LIMIT,
    });
    this._hwm = options.highWaterMark ?? HIGH_WATER_MARK; // for writes
    this._endpoint = options.endpoint;
    this._linkOpts = linkOptions(options); // serverKey, secretFile, reconnect (link.js)
    this.server = null;
    this.timeout = undefined; // Node's plain property: setTimeout() stores msecs here
    this._resetConnection();
  }

  // Everything that belongs to one connection; connect() after 'close' starts
  // from here again, as Node's reconnect does (its counters start at 0 too).
  _resetConnection() {
    this._link = null;
    this._id = null; // BigInt once netcore knows the socket
    this._nc = 'none'; // none | pending (connect sent) | open | closing | closed
    this.connecting = false;
    this._peerEnded = false; // Ended arrived
    this._endAcked = false; // our End reached the kernel (FIN sent)
    this._closedEv = null;
    this._hadError = false;
    this._closeEmitted = false;
    this._counted = false; // counted in server.connections
    this._credited = 0; // bytes read and given back to netcore as credit
    this._ncPaused = false; // Pause sent (or to send once connected)
    // Writes. Byte counts are offsets in the stream of bytes written: a
    // write's callback runs once the acknowledged bytes reach its end.
    this._recs = []; // writes given to write(), not yet handed to _writev, in order
    this._waits = []; // writes with a callback, handed to _writev, awaiting their ack
    this._wq = []; // pieces to send: { buf, fd, end }
    this._pumpQueued = false;
    this._held = null; // { cb, bytes }: a batch the Writable waits for (over the limit)
    this._queuedBytes = 0; // bytes handed to _writev
    this._sentBytes = 0; // bytes sent to netcore in Write/End
    this._ackedBytes = 0; // bytes netcore acknowledged
    this._sentCmds = 0; // Write/End commands sent
    this._ackedCmds = 0; // Write/End commands acknowledged
    this._endCmd = 0; // number of our End command (0: not sent)
    this._finalCb = null; // _final's callback, until the End is acknowledged
    this._needDrain = false;
    this._backlog = 0; // netcore's queue for this socket at its last ack (bytes the kernel refused)
    this._drainCheck = false;
    this._bytesRead = 0;
    this._local = null;
    this._remote = null;
    this._timeoutMs = 0;
    // setNoDelay/setKeepAlive as this side set them (null: never), for
    // Hello.resume_sockets (protocol 1.4).
    this._optNoDelay = null;
    this._optKeepAlive = null;
    this._optKeepAliveDelay = 0;
    this._deferred = new Map(); // option commands waiting for an id / the connection
    this._lastSeq = 0; // a Number: exact up to 2^53 events
    // Session resumption (PROTOCOL.md 16.1): every Write/End sent and not yet
    // acknowledged, { n: its number, buf, fd, end }, for a netcore that
    // resumes the session and never got it.
    this._sentLog = [];
    this._neverConnected = true; // destroyed before 'connect': write callbacks get Node's error
    this._shutdownFailed = false; // our End met ENOTCONN (see _onSocketError)
    // Pipes inside netcore (lib/pipe.js).
    this._offload = null; // as a source: the pipe netcore runs from this socket
    this._pipedBytes = 0; // as a destination: bytes pipes inside netcore moved into it
    this._adoptedWritten = 0; // Adopted: the old owner's bytes written and still queued
    this._pipeEnding = false; // a source piping into it ended: netcore ends it
    this._pipeEnded = false; // netcore ended it for a pipe (its FIN is queued)
  }

  // A socket netcore accepted for one of our servers.
  static _accepted(link, ev, server, adopted) {
    const s = new Socket({ allowHalfOpen: ev.allow_half_open, endpoint: link.endpoint });
    s._attach(link, toBig(ev.socket_id));
    s._nc = 'open';
    s._neverConnected = false;
    s._local = nodeAddress(ev.local);
    s._remote = nodeAddress(ev.remote);
    s.server = server;
    s._lastSeq = 1;
    // Served before by a handler that went: its seq, byte counts and the
    // data it had not finished with (replayed next) carry on.
    s.adopted = !!adopted;
    if (adopted) {
      s._lastSeq = 0; /* the next event's seq is taken as it comes */
      s._bytesRead = Number(ev.bytes_read);
      s._credited = Number(ev.bytes_read);
      // bytesWritten goes on from the old owner's writes: those the kernel
      // took and those still queued in netcore (PROTOCOL.md 13).
      s._adoptedWritten = toNum(ev.bytes_written) + toNum(ev.queued_bytes);
      // A pipe inside netcore that carries on: this socket may be its
      // destination, its source, or both.
      pipes.adoptedSocket(link, s);
      pipes.adopt(s, ev);
    }
    return s;
  }

  _attach(link, id) {
    this._link = link;
    this._id = id;
    this._idv = idVarint(id); // packed once: Write and Credit carry it (protocol.js)
    link.hold(this);
    link.sockets.set(id, this);
  }

  connect(...args) {
    if (args.length === 0 || (args.length === 1 && typeof args[0] === 'function')) {
      throw argError(TypeError, 'ERR_MISSING_ARGS', 'The "options" or "port" or "path" argument must be specified');
    }
    const [opts, cb] = normalizeConnectArgs(args);
    if (this.destroyed && this._nc === 'closed') {
      // Node reconnects a socket after 'close' (or after a destroy that
      // netcore has answered): the same object, a fresh connection.
      this._undestroy();
      this._resetConnection();
    } else if (this._nc !== 'none' || this.destroyed) {
      const err = argError(Error, 'ERR_SOCKET_CONNECTING', 'Socket is already connecting or connected');
      throw err;
    }
    if (opts.localAddress !== undefined && !nodeNet.isIP(String(opts.localAddress))) {
      throw argError(TypeError, 'ERR_INVALID_IP_ADDRESS', `Invalid IP address: ${opts.localAddress}`);
    }
    let endpoint;
    if (opts.path !== undefined && opts.path !== null) {
      endpoint = pathEndpoint(opts.path);
    } else {
      const port = validatePort(opts.port);
      const host = opts.host === undefined || opts.host === null ? 'localhost' : String(opts.host);
      endpoint = { tcp: { host, port } };
    }
    if (opts.allowHalfOpen !== undefined) this.allowHalfOpen = Boolean(opts.allowHalfOpen);
    if (opts.endpoint) this._endpoint = opts.endpoint;
    const link = Link.get(this._endpoint, this._linkOpts); // throws EINVAL for bad keys
    if (opts.timeout) this.setTimeout(opts.timeout);
    if (cb) this.once('connect', cb);
    this._target = endpoint;
    this.connecting = true;
    this._nc = 'pending';
    this._link = link;
    link.hold(this);
    link.run(() => {
      if (this.destroyed) return;
      this._attach(link, link.newId());
      this._sendConnect();
      this._flushDeferred(false);
      this._pump();
    });
    return this;
  }

  // ---------------------------------------------------------------- events

  _onEvent(kind, ev, payload, seq) {
    const s = toNum(seq);
    if (s !== 0 && this._lastSeq !== 0 && s !== this._lastSeq + 1) {
      process.emitWarning(`netcore: socket ${this._id} event ${kind} has seq ${s}, expected ${this._lastSeq + 1}`);
    }
    if (s !== 0) this._lastSeq = s;
    switch (kind) {
      case 'connected':
        return this._onConnected(ev);
      case 'data':
        return this._onData(payload || Buffer.alloc(0));
      case 'ended':
        this._peerEnded = true;
        pipes.onSourceEnded(this);
        if (!this.destroyed) {
          this.push(null);
          this.read(0);
        }
        return undefined;
      case 'write_ack':
        return this._onAck(ev);
      case 'timeout':
        if (!this.destroyed) this.emit('timeout');
        return undefined;
      case 'socket_error':
        return this._onSocketError(ev);
      case 'closed':
        return this._onClosed(ev);
      case 'fd':
        return this._onFd(ev);
      case 'unpiped':
        return pipes.onUnpiped(this, ev);
      default:
        return undefined;
    }
  }

  _onConnected(ev) {
    this._nc = 'open';
    this.connecting = false;
    this._neverConnected = false;
    this._local = nodeAddress(ev.local);
    this._remote = nodeAddress(ev.remote);
    this._flushDeferred(true);
    if (this.destroyed) return;
    this.emit('connect');
    this.emit('ready');
  }

  _onData(buf) {
    this._bytesRead += buf.length;
    if (this.destroyed) return;
    this.push(buf); // straight to 'data' listeners when flowing with nothing buffered
    this._maybeGrant();
  }

  // A WriteAck: its sums say how far the kernel has taken our bytes and
  // Write/End commands (cumulative, in order; bytes may run ahead).
  _onAck(ack) {
    this._ackedCmds = Math.min(this._sentCmds, this._ackedCmds + ack.writes);
    this._ackedBytes = Math.min(this._sentBytes, this._ackedBytes + toNum(ack.bytes));
    const log = this._sentLog;
    let k = 0;
    while (k < log.length && log[k].n <= this._ackedCmds) k += 1;
    if (k === 1) log.shift(); // the usual case: no array of the removed one
    else if (k > 1) log.splice(0, k);
    this._backlog = toNum(ack.queued_bytes);
    this._settle();
    if (this._finalCb && this._endCmd !== 0 && this._ackedCmds >= this._endCmd) {
      const cb = this._finalCb;
      this._finalCb = null;
      this._endAcked = true;
      cb();
    }
    this._pump();
    this._maybeDrain();
  }

  // Node's 'drain': after write() returned false, everything written so far
  // reached the kernel (Node's buffer is then empty too: its writes completed).
  _maybeDrain() {
    const writable = super.writableLength - (this._held ? this._held.bytes : 0);
    const idle = writable === 0 && this._queuedBytes === this._ackedBytes;
    if (this._needDrain && idle && !this.destroyed && !this.writableEnded) {
      this._needDrain = false;
      this.emit('drain');
    }
  }

  // Runs the callbacks of the writes whose bytes are all acknowledged.
  _settle() {
    const w = this._waits;
    while (w.length > 0 && w[0].end <= this._ackedBytes) {
      const rec = w.shift();
      if (!rec.done) {
        rec.done = true;
        rec.cb(null);
      }
    }
  }

  _onSocketError(ev) {
    if (ev.code === 'ENOTCONN' && this._endCmd !== 0) {
      // Our End found the connection already dropped (shutdown(2) says
      // ENOTCONN). Node ignores shutdown errors: 'finish', 'end', and then
      // 'close'(false) once netcore's Closed arrives.
      this._shutdownFailed = true;
      this._peerEnded = true;
      if (this._finalCb) {
        const cb = this._finalCb;
        this._finalCb = null;
        this._endAcked = true;
        cb();
      }
      if (!this.destroyed) {
        this.push(null);
        this.read(0);
      }
      return;
    }
    this._nc = 'closing';
    this.destroy(this._makeError(ev.code, ev.message));
  }

  _makeError(code, message) {
    const t = this._target;
    if (this.connecting && t) {
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') {
        return ncError(code, { syscall: 'getaddrinfo', hostname: t.tcp.host, message });
      }
      if (t.path !== undefined || t.path_bytes !== undefined) {
        return ncError(code, { syscall: 'connect', address: pathText(t.path_bytes || t.path), message });
      }
      return ncError(code, { syscall: 'connect', address: t.tcp.host, port: t.tcp.port, message });
    }
    if (code === 'ECONNRESET' || code === 'ETIMEDOUT') return ncError(code, { syscall: 'read', message });
    if (code === 'EPIPE' || code === 'ENOBUFS') return ncError(code, { syscall: 'write', message });
    return ncError(code, { message });
  }

  _onClosed(ev) {
    if (this._shutdownFailed) ev = { ...ev, had_error: false };
    this._nc = 'closed';
    this._closedEv = ev;
    this._release();
    if (this.destroyed) {
      this._emitClose();
    } else if (ev.had_error) {
      this.destroy(ncError(this._link.shuttingDown ? 'ERR_NETCORE_SHUTDOWN' : 'ECONNRESET', { syscall: 'read' }));
    } else if (!(this._peerEnded && this._endAcked)) {
      // netcore closed a socket that was not ended on both sides (its
      // shutdown, or a destroy of ours that crossed): no more I/O.
      this.destroy(this._link.shuttingDown ? ncError('ERR_NETCORE_SHUTDOWN') : undefined);
    }
    // Otherwise both sides ended cleanly: autoDestroy runs once the
    // application has read to 'end', so buffered data is never dropped.
  }

  _onFd(ev) {
    const s = new Socket({ allowHalfOpen: this.allowHalfOpen, endpoint: this._endpoint });
    s._attach(this._link, toBig(ev.new_socket_id));
    s._nc = 'open';
    s._local = nodeAddress(ev.local);
    s._remote = nodeAddress(ev.remote);
    if (!this.destroyed) this.emit('fd', s);
  }

  _onCommandError(err, command) {
    // A Pipe or Unpipe that crossed the pipe's own end (PROTOCOL.md 17): the
    // Unpiped or Closed it crossed says what happened; nothing is wrong.
    if (command === 'pipe' || command === 'unpipe') return;
    // A command of ours was refused (e.g. an fd socket we do not own): the
    // socket's state is no longer what we believe, as for any socket error.
    if (!this.destroyed) this.destroy(err);
  }

  // What this socket has seen, for Hello.resume_sockets; null if it does
  // not go in. A connecting one whose Connect went does (protocol 1.4):
  // netcore says Connected again, or lacks it and the Connect goes again.
  _resumeEntry() {
    const connecting = this._nc === 'pending' && this._id !== null;
    if (this._nc !== 'open' && this._nc !== 'closing' && !connecting) return null;
    return {
      socket_id: toLong(this._id),
      bytes_received: this._bytesRead,
      bytes_credited: this._credited,
      writes_acked: this._ackedCmds,
      bytes_acked: this._ackedBytes,
      saw_end: this._peerEnded,
      last_seq: toLong(BigInt(this._lastSeq)),
      connecting,
      // Its view of the options: one the old netcore never read is applied
      // by the new one (PROTOCOL.md 16.1).
      has_options: true,
      timeout_ms: Math.min(0xffffffff, Math.floor(this._timeoutMs || 0)),
      no_delay: this._optNoDelay === null ? 0 : 1 + Number(this._optNoDelay),
      keep_alive: this._optKeepAlive === null ? 0 : 1 + Number(this._optKeepAlive),
      keep_alive_delay_ms: this._optKeepAliveDelay,
    };
  }

  // The Connect of this socket's id to its target (connect(), _connectAgain).
  _sendConnect() {
    this._link.send({ connect: { socket_id: toLong(this._id), ...this._target, allow_half_open: this.allowHalfOpen } });
  }

  // A connecting socket the resumed netcore lacks (its Connect was lost with
  // the old one, or it was still connecting at the takeover): the same
  // Connect under the same id, its options, then every write. false if it
  // has no Connect to send again.
  _connectAgain() {
    if (this._nc !== 'pending' || this._id === null || !this._target) return false;
    this._sendConnect();
    if (this._ncPaused) this._link.send({ pause: { socket_id: toLong(this._id) } }); // the new netcore's socket is new
    if (this._timeoutMs) this._link.send({ set_timeout: { socket_id: toLong(this._id), msecs: Math.floor(this._timeoutMs) } });
    if (this._optNoDelay !== null && !this._deferred.has('nodelay')) {
      this._deferred.set('nodelay', { cmd: { set_no_delay: { enable: this._optNoDelay } }, needsConnection: true });
    }
    if (this._optKeepAlive !== null && !this._deferred.has('keepalive')) {
      this._deferred.set('keepalive', {
        cmd: { set_keep_alive: { enable: this._optKeepAlive, initial_delay_ms: this._optKeepAliveDelay } },
        needsConnection: true,
      });
    }
    this._resumed(0);
    return true;
  }

  // The session resumed: the writes netcore never got go again, then the
  // pause state (either command is harmless when it changes nothing), a
  // destroy, and the credit owed.
  _resumed(writes) {
    const id = toLong(this._id);
    for (const e of this._sentLog) {
      if (e.n <= writes) continue;
      // Acknowledged promptly: a callback, 'drain' or 'finish' may wait for them.
      if (e.end) this._link.send({ end: { socket_id: id, ack_now: true } });
      else {
        const write = { socket_id: id, ack_now: true };
        if (e.fd !== null && e.fd !== undefined) write.fd_socket_id = toLong(e.fd);
        this._link.send({ write }, e.buf);
      }
    }
    if (this._nc === 'closing') {
      this._link.send({ destroy: { socket_id: id } });
      return;
    }
    this._link.send(this._ncPaused ? { pause: { socket_id: id } } : { resume: { socket_id: id } });
    this._maybeGrant();
  }

  _onLinkGone(err) {
    this._nc = 'closed';
    if (this._link && this._id !== null) this._link.sockets.delete(this._id);
    if (!this.destroyed) this.destroy(err);
    else this._emitClose();
  }

  _release() {
    if (this._id !== null) this._link.sockets.delete(this._id);
    this._uncount();
    if (this._link) this._link.release(this);
  }

  _uncount() {
    if (this.server && !this._counted) {
      this._counted = true;
      this.server._connections -= 1;
    }
  }

  // --------------------------------------------------------- Duplex hooks

  _read() {
    this._maybeGrant();
  }

  // Every way the application takes data out of the Readable buffer
  // ('data' in flowing mode, read(), 'readable', async iteration) goes
  // through read(): that is where bytes count as consumed.
  read(n) {
    const chunk = super.read(n);
    if (chunk !== null) this._maybeGrant();
    return chunk;
  }

  // Credit goes back for consumed bytes only (read, minus what still waits
  // in the Readable buffer), in batches of a quarter window, and not while
  // paused. So netcore never has more than one window on its way or waiting
  // here, whatever the application does: a pipe() waiting for 'drain' holds
  // at most a window, and TCP pushes back on the peer. Granting for bytes
  // on arrival instead would let the buffer grow without bound. (With
  // setEncoding the buffer counts characters, which only moves a grant a
  // little earlier or later; an empty buffer makes the count exact.)
  _maybeGrant() {
    if (this._id === null || (this._nc !== 'open' && this._nc !== 'pending')) return;
    if (this._link.resuming) return; // granted once the session resumed
    const owed = this._bytesRead - this.readableLength - this._credited;
    if (owed < 1) return; // every consumed byte, at once: credit is netcore's proof (PROTOCOL.md 13)
    // Piped inside netcore: this credit lets netcore start moving, so the
    // writes this Data produced into the destination must reach it first.
    if (this._offload && this._offload.dest) this._offload.dest._pump();
    this._link.sendPacked(packCredit(this._idv, owed), false);
    this._credited += owed;
  }

  _write(chunk, encoding, cb) {
    this._take(chunk);
    this._handed(chunk.length, cb);
  }

  // The Writable hands over what was written, in order. The pieces join the
  // send queue, which goes out on the next tick (so the writes of one tick
  // share Write commands, see _pump), and the Writable has its callback at
  // once unless this socket already holds its limit unacknowledged: the
  // next write never waits for a round trip. The writes' own callbacks wait
  // for the acks (_settle).
  _writev(chunks, cb) {
    let bytes = 0;
    for (const { chunk } of chunks) {
      this._take(chunk);
      bytes += chunk.length;
    }
    this._handed(bytes, cb);
  }

  // One chunk handed over by the Writable (_write, _writev).
  _take(chunk) {
    // write() made a record for each chunk, in the same order.
    const rec = this._recs.length > 0 && this._recs[0].chunk === chunk ? this._recs.shift() : null;
    this._queuedBytes += chunk.length;
    if (rec) {
      rec.chunk = null;
      if (rec.cb) {
        rec.end = this._queuedBytes;
        this._waits.push(rec);
      }
    }
    // An empty write goes out only when its callback waits for the
    // writes before it: its ack then covers them.
    if (chunk.length === 0 && !(rec && rec.cb && rec.end > this._ackedBytes)) return;
    this._wq.push({ buf: chunk, fd: fdOf.get(chunk), end: false });
  }

  // After the chunks of one _write/_writev (bytes in all): the pump, and the
  // Writable's callback now or once the acks make room.
  _handed(bytes, cb) {
    if (this._waits.length > 0 && this._waits[0].end <= this._ackedBytes) process.nextTick(() => this._settle());
    this._schedulePump();
    if (bytes === 0 || (this._id !== null && this._queuedBytes - this._ackedBytes < this._writeLimit())) cb();
    else this._held = { cb, bytes };
  }

  _final(cb) {
    if (this._pipeEnded) {
      cb(); // netcore ended it for a pipe (lib/pipe.js)
      return;
    }
    this._finalCb = cb;
    if (this._pipeEnding) return; // netcore's end of it is on its way: Unpiped settles

    this._wq.push({ buf: null, fd: undefined, end: true });
    this._schedulePump();
  }

  // Bytes this socket may have queued or unacknowledged in netcore: half of
  // netcore's per-socket limit, far above any high-water mark.
  _writeLimit() {
    const w = this._link && this._link.welcome;
    return w ? Math.max(1, w.max_write_queue >>> 1) : 0;
  }

  _schedulePump() {
    if (this._pumpQueued) return;
    this._pumpQueued = true;
    process.nextTick(pumpTick, this);
  }

  // Sends queued pieces while netcore holds less than the write limit for
  // this socket; the rest goes as acks come back. Small pieces in a row
  // travel in one Write (a ZeroMQ message costs far more than copying a few
  // KiB); big ones go alone, uncopied. Acks count bytes, so callbacks do not
  // care how writes were cut. Each payload fits in max_frame.
  _pump() {
    if (this._id === null || (this._nc !== 'open' && this._nc !== 'pending')) return;
    const limit = this._writeLimit();
    const maxPiece = Math.max(1, Math.min(this._link.welcome.max_frame, limit));
    const mergeMax = Math.min(MERGE_MAX, maxPiece);
    const q = this._wq;
    while (q.length > 0 && (this._sentBytes - this._ackedBytes < limit || this._sentCmds === this._ackedCmds)) {
      const p = q[0];
      if (p.end) {
        q.shift();
        // 'finish' waits for the End's ack: always prompt.
        this._link.send({ end: { socket_id: toLong(this._id), ack_now: true } });
        this._sentCmds += 1;
        this._endCmd = this._sentCmds;
        if (this._link.resumable) this._sentLog.push({ n: this._sentCmds, end: true });
        continue;
      }
      let buf = p.buf;
      let fd = null;
      let fdId = null; // for the write log (a resumed session sends it again)
      if (p.fd) {
        fdId = p.fd._id;
        fd = idVarint(fdId);
        p.fd = undefined; // the fd goes with the first piece only
      }
      if (buf.length > maxPiece) {
        // Split: the head goes now as its own Write, the rest stays queued.
        buf = p.buf.subarray(0, maxPiece);
        p.buf = p.buf.subarray(maxPiece);
      } else {
        q.shift();
        let n = buf.length;
        let k = 0;
        if (!fd && n < SMALL_PIECE) {
          while (k < q.length && isSmall(q[k]) && n + q[k].buf.length <= mergeMax) {
            n += q[k].buf.length;
            k += 1;
          }
        }
        if (k > 0) buf = Buffer.concat([buf, ...q.splice(0, k).map((x) => x.buf)], n);
      }
      // Lazy acks (PROTOCOL.md 7): a prompt one only when something waits
      // for it: a write callback, 'drain', the Writable held back, 'finish',
      // or the pump itself nearing its limit.
      const ackNow = this._waits.length > 0 || this._needDrain || this._held !== null || this._refd === false ||
        this._finalCb !== null || this._sentBytes + buf.length - this._ackedBytes >= Math.min(this._hwm, limit >>> 1);
      this._link.sendPacked(packWrite(this._idv, fd, ackNow), true, buf);
      this._sentCmds += 1;
      this._sentBytes += buf.length;
      if (this._link.resumable) {
        this._sentLog.push({ n: this._sentCmds, buf, fd: fdId, end: false });
      }
    }
    if (this._refd === false) this._link.setRef(this);
    if (this._held && this._queuedBytes - this._ackedBytes < limit) {
      const { cb } = this._held;
      this._held = null;
      cb(); // the Writable may hand over what it buffered meanwhile
    }
  }

  _destroy(err, cb) {
    this.connecting = false;
    this._hadError = Boolean(err);
    this._uncount();
    // Callbacks of writes that will never be acknowledged. The error is made
    // only if one waits: an Error captures a stack, dear at one per connection.
    const held = this._held;
    const waits = this._waits;
    const finalCb = this._finalCb;
    const failed = held || finalCb || waits.some((rec) => !rec.done)
      ? this._neverConnected
        ? argError(Error, 'ERR_SOCKET_CLOSED_BEFORE_CONNECTION', 'Socket closed before the connection was established')
        : err || ncError('ERR_SOCKET_CLOSED', { message: 'socket is closed' })
      : null;
    this._wq = [];
    this._sentLog = [];
    this._held = null;
    this._waits = [];
    this._finalCb = null;
    this._sentBytes = this._ackedBytes = this._queuedBytes;
    this._ackedCmds = this._sentCmds;
    this._needDrain = false;
    for (const rec of waits) {
      if (!rec.done) {
        rec.done = true;
        rec.cb(failed);
      }
    }
    if (held) held.cb(failed);
    if (finalCb) finalCb(failed);

    if (this._id === null) {
      // netcore never heard of it (not connected, or still waiting for Welcome).
      if (this._link && this._nc !== 'closed') this._link.release(this);
      this._nc = 'closed';
    } else if (this._nc === 'open' || this._nc === 'pending') {
      this._nc = 'closing';
      // When both sides have ended netcore is closing the socket itself.
      if (!(this._peerEnded && this._endAcked)) this._link.send({ destroy: { socket_id: toLong(this._id) } });
    }
    cb(err);
    if (this._nc === 'closed') this._emitClose();
  }

  _emitClose() {
    if (this._closeEmitted) return;
    this._closeEmitted = true;
    const hadError = this._hadError || Boolean(this._closedEv && this._closedEv.had_error);
    process.nextTick(() => {
      this.emit('close', hadError);
      // After its own 'close', as Node's server hears of it.
      if (this.server && this.server._open) this.server._connectionClosed(this);
    });
  }

  // ------------------------------------------------------------ Node API

  // write(data, [encoding], [fd], [cb]): Node's write, plus the seed's fd
  // passing (fd is another socket of this process; its fd goes with data).
  write(data, ...rest) {
    let encoding;
    let fd;
    let cb;
    for (const a of rest) {
      if (typeof a === 'function') cb = a;
      else if (a instanceof Socket) fd = a;
      else if (typeof a === 'string') encoding = a;
    }
    if (this.writableEnded && this._peerEnded && !this.allowHalfOpen) {
      // Node's writeAfterFIN: our side was ended because the peer's was.
      const er = new Error('This socket has been ended by the other party');
      er.code = 'EPIPE';
      if (cb) process.nextTick(cb, er);
      this.destroy(er);
      return false;
    }
    let chunk = data;
    if (fd) {
      if (fd._id === null) throw argError(TypeError, 'EBADF', 'the socket whose fd is sent is not open');
      chunk = Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.from(String(data), encoding || 'utf8');
      if (chunk.length === 0) throw argError(TypeError, 'EINVAL', 'an fd must be sent with at least one byte of data');
      fdOf.set(chunk, fd);
    } else if (typeof data === 'string') {
      // Encoded here rather than by the Writable so that _writev can match
      // the Buffer it receives with this write's record.
      chunk = Buffer.from(data, encoding || this._writableState.defaultEncoding);
    } else if (data instanceof Uint8Array && !Buffer.isBuffer(data)) {
      chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    }
    // The Writable calls its callback once the bytes are on their way to
    // netcore, or with an error if they never will be; the write's own
    // callback waits for the ack (_settle).
    const rec = { chunk, cb, end: 0, done: false };
    const before = this.bufferSize;
    this._recs.push(rec);
    let ok;
    try {
      ok = super.write(chunk, (err) => {
        if (err) this._writeFailed(rec, err);
      });
    } catch (err) {
      this._recs.pop();
      throw err;
    }
    if (!ok) return false; // refused (destroyed): the error follows
    // Node's rule: false once what was buffered plus this chunk reaches the
    // high-water mark; 'drain' when nothing is buffered any more.
    if (before + chunk.length >= this._hwm) {
      this._needDrain = true;
      if (!this._drainCheck) {
        this._drainCheck = true;
        process.nextTick(() => {
          this._drainCheck = false;
          this._maybeDrain();
        });
      }
      return false;
    }
    return true;
  }

  // A write that will never reach netcore (the socket was destroyed first).
  _writeFailed(rec, err) {
    for (const list of [this._recs, this._waits]) {
      const i = list.lastIndexOf(rec);
      if (i >= 0) list.splice(i, 1);
    }
    if (!rec.done) {
      rec.done = true;
      if (rec.cb) rec.cb(err);
    }
  }

  // end([data], [encoding], [cb]): the data goes through write() like any
  // other, so its callback and bufferSize follow the acks too.
  end(data, encoding, cb) {
    if (typeof data === 'function') return super.end(data);
    if (typeof encoding === 'function') return this.end(data, undefined, encoding);
    if (data === undefined || data === null || this.writableEnded || this.destroyed) {
      return super.end(data, encoding, cb); // the Writable reports what is wrong
    }
    if (encoding === undefined) this.write(data);
    else this.write(data, encoding);
    return super.end(cb);
  }

  // Node's pipe, run inside netcore when it can (lib/pipe.js).
  pipe(dest, opts) {
    if (pipes.alreadyPiped(this, dest)) return dest;
    const when = pipes.plan(this, dest);
    // Any other consumer takes the stream back from netcore first.
    pipes.handBack(this);
    const r = super.pipe(dest, opts);
    if (when === 'now') pipes.start(this, dest, opts);
    else if (when === 'later') pipes.startWhenOpen(this, dest, opts);
    return r;
  }

  unpipe(dest) {
    const o = this._offload;
    if (o && (dest === undefined || dest === o.dest)) pipes.handBack(this);
    return super.unpipe(dest);
  }

  setEncoding(encoding) {
    pipes.handBack(this);
    return super.setEncoding(encoding);
  }

  // Pause and Resume go as soon as netcore has the socket's id: netcore
  // holds a Pause said while connecting, so a socket paused before 'connect'
  // never reads (as Node's), not even the peer's reset (it hears of it from
  // the next write or end, as Node does).
  pause() {
    if (!this._ncPaused) {
      this._ncPaused = true;
      if (this._ncHasId()) this._link.send({ pause: { socket_id: toLong(this._id) } });
      else this._deferred.set('pause', true);
    }
    return super.pause();
  }

  resume() {
    if (this._ncPaused) {
      this._ncPaused = false;
      this._deferred.delete('pause');
      if (this._ncHasId()) this._link.send({ resume: { socket_id: toLong(this._id) } });
      if (this._nc === 'open') this._maybeGrant();
    }
    return super.resume();
  }

  _ncHasId() {
    return this._nc === 'open' || (this._nc === 'pending' && this._id !== null);
  }

  // As Node's setStreamTimeout: a destroyed socket ignores it; `timeout`
  // takes msecs before the checks; assigning `timeout` changes only the property.
  setTimeout(msecs, cb) {
    if (this.destroyed) return this;
    this.timeout = msecs;
    if (typeof msecs !== 'number') {
      throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "msecs" argument must be of type number. Received ${describeArg(msecs)}`);
    }
    const ms = msecs;
    if (!Number.isFinite(ms) || ms < 0) throw argError(RangeError, 'ERR_OUT_OF_RANGE', `timeout must be >= 0. Received ${msecs}`);
    if (cb !== undefined && typeof cb !== 'function') {
      throw argError(TypeError, 'ERR_INVALID_ARG_TYPE', `The "callback" argument must be of type function. Received ${describeArg(cb)}`);
    }
    this._timeoutMs = ms;
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this._option('timeout', { set_timeout: { msecs: Math.floor(ms) } }, false);
    return this;
  }

  // Node's handle refs: while every object of the link is unref'd, the
  // link keeps the process alive no more (link.js).
  ref() {
    this._refd = true;
    if (this._link) this._link.setRef(this);
    return this;
  }

  unref() {
    this._refd = false;
    // Writes sent with a lazy ack (PROTOCOL.md 7) are acknowledged only with
    // the socket's next event, which may never come: an unref'd socket waits
    // for them (_keepsAlive), so ask for the ack now with an empty Write.
    if (this._link && this._sentCmds > this._ackedCmds && this._endCmd === 0 && !this.destroyed) {
      this._link.sendPacked(packWrite(this._idv, 0, true), true, EMPTY);
      this._sentCmds += 1;
      // Numbered as every Write: a resumed session sends it again if lost.
      if (this._link.resumable) this._sentLog.push({ n: this._sentCmds, buf: EMPTY, fd: null, end: false });
    }
    if (this._link) this._link.setRef(this);
    return this;
  }

  // An unref'd socket still waits for its connect and its writes, as Node's
  // pending libuv requests keep the loop alive.
  _keepsAlive() {
    return this._refd !== false || this.connecting || this._wq.length > 0 || this._sentCmds > this._ackedCmds;
  }

  setNoDelay(noDelay = true) {
    this._optNoDelay = Boolean(noDelay);
    this._option('nodelay', { set_no_delay: { enable: Boolean(noDelay) } }, true);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0) {
    const ms = Math.max(0, Math.floor(Number(initialDelay) || 0));
    this._optKeepAlive = Boolean(enable);
    this._optKeepAliveDelay = ms;
    this._option('keepalive', { set_keep_alive: { enable: Boolean(enable), initial_delay_ms: ms } }, true);
    return this;
  }

  // Option commands go now when netcore has the socket (connected, or just
  // the id when the option is fine on a connecting socket), else on the
  // matching step; the last setting of each option wins.
  _option(name, cmd, needsConnection) {
    if (this.destroyed) return;
    const ready = needsConnection ? this._nc === 'open' : this._nc === 'open' || (this._nc === 'pending' && this._id !== null);
    if (ready) this._sendOption(cmd);
    else this._deferred.set(name, { cmd, needsConnection });
  }

  _sendOption(cmd) {
    const key = Object.keys(cmd)[0];
    this._link.send({ [key]: { socket_id: toLong(this._id), ...cmd[key] } });
  }

  _flushDeferred(connected) {
    for (const [name, d] of [...this._deferred]) {
      if (name === 'pause') {
        this._link.send({ pause: { socket_id: toLong(this._id) } });
      } else {
        if (d.needsConnection && !connected) continue;
        this._sendOption(d.cmd);
      }
      this._deferred.delete(name);
    }
  }


  address() {
    if (!this._local) return {};
    if (this._local.family === 'unix') return { address: this._local.address };
    return { ...this._local };
  }

  get remoteAddress() {
    return this._remote && this._remote.family !== 'unix' ? this._remote.address : undefined;
  }

  get remotePort() {
    return this._remote && this._remote.family !== 'unix' ? this._remote.port : undefined;
  }

  get remoteFamily() {
    return this._remote && this._remote.family !== 'unix' ? this._remote.family : undefined;
  }

  get localAddress() {
    return this._local ? this._local.address : undefined;
  }

  get localPort() {
    return this._local && this._local.family !== 'unix' ? this._local.port : undefined;
  }

  get localFamily() {
    return this._local && this._local.family !== 'unix' ? this._local.family : undefined;
  }

  // Node's buffered bytes: those the kernel did not take at once. Here that
  // is what waits in the Writable (past the write limit), plus what was
  // handed on but cannot reach the kernel at once: everything not yet
  // acknowledged while connecting or while netcore's last ack reported a
  // queue for this socket (the kernel refused more), else only what is
  // over the write limit. Bytes netcore can hand to the kernel straight
  // away are not buffered, as in Node, where a write the kernel takes at
  // once is never counted.
  get bufferSize() {
    const writable = super.writableLength - (this._held ? this._held.bytes : 0);
    const unacked = this._queuedBytes - this._ackedBytes;
    const waiting = this.connecting || this._id === null || this._backlog > 0;
    return writable + (waiting ? unacked : Math.max(0, unacked - this._writeLimit()));
  }

  // As in Node, the bytes whose write callbacks have not run yet.
  get writableLength() {
    return this.bufferSize;
  }

  get writableHighWaterMark() {
    return this._hwm;
  }

  get writableNeedDrain() {
    return this._needDrain && !this.destroyed && !this.writableEnded;
  }

  get bytesRead() {
    return this._bytesRead;
  }

  // Node's definition: bytes given to the socket to write, queued ones
  // included; on an adopted socket the old owner's too (Adopted).
  get bytesWritten() {
    let n = this._adoptedWritten + this._queuedBytes + this._pipedBytes;
    for (const { chunk } of this.writableBuffer) n += chunk.length;
    return n;
  }

  get pending() {
    return this._nc === 'none' || this.connecting;
  }

  get readyState() {
    if (this.connecting) return 'opening';
    if (this.readable && this.writable) return 'open';
    if (this.readable && !this.writable) return 'readOnly';
    if (!this.readable && this.writable) return 'writeOnly';
    return 'closed';
  }
}

module.exports = { Socket, normalizeConnectArgs, validatePort };
