'use strict';
// socket.js: net.Socket over netcore. A real stream.Duplex, as Node's own
// net.Socket is, so write()/'drain', pipe(), setEncoding(), 'end'/'finish',
// allowHalfOpen and stream.pipeline() behave exactly like Node's: they are
// Node's code. This file only maps the Duplex hooks onto the protocol:
//
//   _writev -> Write commands; the callback runs when netcore's WriteAcks
//              say the bytes reached the kernel (so bufferSize, write()'s
//              return value and 'drain' follow the real socket);
//   _final  -> End; 'finish' once its ack arrives (the FIN was sent);
//   _read   -> read credit given back as the application consumes data;
//   pause() / resume() -> Pause / Resume (reading stops at once);
//   _destroy -> Destroy; 'close' when netcore's Closed arrives.
//
// A socket belongs to one link (lib/link.js); all its events come from there.

const { Duplex } = require('stream');
const { Link } = require('./link');
const { toBig, toLong, nodeAddress } = require('./protocol');
const { ncError, argError } = require('./errors');

const HIGH_WATER_MARK = 16 * 1024; // Node's default for sockets

// Buffers written with write(data, fd): the netcore socket whose fd goes
// with them. Keyed by the Buffer object handed to the Writable.
const fdOf = new WeakMap();

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
  if (a[0] !== null && typeof a[0] === 'object') opts = { ...a[0] };
  else if (typeof a[0] === 'string' && !/^\s*\d+\s*$/.test(a[0])) opts = { path: a[0] };
  else opts = { port: a[0], host: a[1] };
  return [opts, cb];
}

class Socket extends Duplex {
  constructor(options = {}) {
    super({
      allowHalfOpen: Boolean(options.allowHalfOpen),
      emitClose: false, // 'close' carries had_error and waits for netcore's Closed
      autoDestroy: true,
      decodeStrings: true,
      highWaterMark: options.highWaterMark || HIGH_WATER_MARK,
    });
    this._endpoint = options.endpoint;
    this._link = null;
    this._id = null; // BigInt once netcore knows the socket
    this._nc = 'none'; // none | pending (connect sent) | open | closing | closed
    this.connecting = false;
    this.server = null;
    this._peerEnded = false; // Ended arrived
    this._endAcked = false; // our End reached the kernel (FIN sent)
    this._closedEv = null;
    this._hadError = false;
    this._closeEmitted = false;
    this._counted = false; // counted in server.connections
    this._owed = 0; // bytes received and not yet given back as credit
    this._readWanted = true; // the Readable wants more (push() returned true or _read ran)
    this._ncPaused = false; // Pause sent (or to send once connected)
    this._wq = []; // pieces to send: { buf, fd, end, batch }
    this._fifo = []; // pieces sent, awaiting WriteAck, in order
    this._inflight = 0;
    this._bytesRead = 0;
    this._bytesAccepted = 0; // bytes handed to _writev
    this._local = null;
    this._remote = null;
    this._timeoutMs = 0;
    this._deferred = new Map(); // option commands waiting for an id / the connection
    this._lastSeq = 0n;
  }

  // A socket netcore accepted for one of our servers.
  static _accepted(link, ev, server) {
    const s = new Socket({ allowHalfOpen: ev.allow_half_open, endpoint: link.endpoint });
    s._attach(link, toBig(ev.socket_id));
    s._nc = 'open';
    s._local = nodeAddress(ev.local);
    s._remote = nodeAddress(ev.remote);
    s.server = server;
    s._lastSeq = 1n;
    return s;
  }

  _attach(link, id) {
    this._link = link;
    this._id = id;
    link.hold(this);
    link.sockets.set(id, this);
  }

  connect(...args) {
    const [opts, cb] = normalizeConnectArgs(args);
    if (this._nc !== 'none' || this.destroyed) {
      const err = argError(Error, 'ERR_SOCKET_CONNECTING', 'Socket is already connecting or connected');
      throw err;
    }
    let endpoint;
    if (opts.path !== undefined && opts.path !== null) {
      endpoint = { path: String(opts.path) };
    } else {
      const port = validatePort(opts.port);
      const host = opts.host === undefined || opts.host === null ? 'localhost' : String(opts.host);
      endpoint = { tcp: { host, port } };
    }
    if (opts.allowHalfOpen !== undefined) this.allowHalfOpen = Boolean(opts.allowHalfOpen);
    if (opts.endpoint) this._endpoint = opts.endpoint;
    if (opts.timeout) this.setTimeout(opts.timeout);
    if (cb) this.once('connect', cb);
    this._target = endpoint;
    this.connecting = true;
    this._nc = 'pending';
    const link = Link.get(this._endpoint);
    this._link = link;
    link.hold(this);
    link.run(() => {
      if (this.destroyed) return;
      this._attach(link, link.newId());
      link.send({ connect: { socket_id: toLong(this._id), ...endpoint, allow_half_open: this.allowHalfOpen } });
      this._flushDeferred(false);
      this._pump();
    });
    return this;
  }

  // ---------------------------------------------------------------- events

  _onEvent(kind, ev, payload, seq) {
    const s = toBig(seq);
    if (s !== 0n && this._lastSeq !== 0n && s !== this._lastSeq + 1n) {
      process.emitWarning(`netcore: socket ${this._id} event ${kind} has seq ${s}, expected ${this._lastSeq + 1n}`);
    }
    if (s !== 0n) this._lastSeq = s;
    switch (kind) {
      case 'connected':
        return this._onConnected(ev);
      case 'data':
        return this._onData(payload || Buffer.alloc(0));
      case 'ended':
        this._peerEnded = true;
        if (!this.destroyed) {
          this.push(null);
          this.read(0);
        }
        return undefined;
      case 'write_ack':
        return this._onAck(ev.writes);
      case 'timeout':
        if (!this.destroyed) this.emit('timeout');
        return undefined;
      case 'socket_error':
        return this._onSocketError(ev);
      case 'closed':
        return this._onClosed(ev);
      case 'fd':
        return this._onFd(ev);
      default:
        return undefined;
    }
  }

  _onConnected(ev) {
    this._nc = 'open';
    this.connecting = false;
    this._local = nodeAddress(ev.local);
    this._remote = nodeAddress(ev.remote);
    this._flushDeferred(true);
    if (this.destroyed) return;
    this.emit('connect');
    this.emit('ready');
  }

  _onData(buf) {
    this._bytesRead += buf.length;
    this._owed += buf.length;
    if (this.destroyed) return;
    if (!this.push(buf)) this._readWanted = false;
    this._maybeGrant();
  }

  _onAck(writes) {
    for (let n = writes; n > 0 && this._fifo.length > 0; n--) {
      const p = this._fifo.shift();
      this._inflight -= p.buf ? p.buf.length : 0;
      if (p.end) this._endAcked = true;
      p.batch.left -= 1;
      if (p.batch.left === 0) p.batch.cb();
    }
    this._pump();
  }

  _onSocketError(ev) {
    this._nc = 'closing';
    this.destroy(this._makeError(ev.code, ev.message));
  }

  _makeError(code, message) {
    const t = this._target;
    if (this.connecting && t) {
      if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'EAI_FAIL') {
        return ncError(code, { syscall: 'getaddrinfo', hostname: t.tcp.host, message });
      }
      if (t.path !== undefined) return ncError(code, { syscall: 'connect', address: t.path, message });
      return ncError(code, { syscall: 'connect', address: t.tcp.host, port: t.tcp.port, message });
    }
    if (code === 'ECONNRESET' || code === 'ETIMEDOUT') return ncError(code, { syscall: 'read', message });
    if (code === 'EPIPE' || code === 'ENOBUFS') return ncError(code, { syscall: 'write', message });
    return ncError(code, { message });
  }

  _onClosed(ev) {
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

  _onCommandError(err) {
    // A command of ours was refused (e.g. an fd socket we do not own): the
    // socket's state is no longer what we believe, as for any socket error.
    if (!this.destroyed) this.destroy(err);
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
    this._readWanted = true;
    this._maybeGrant();
  }

  // Credit goes back in batches of a quarter window, only while the
  // application wants data: a full Readable buffer or pause() withholds it,
  // which stops netcore reading and lets TCP push back on the peer.
  _maybeGrant(force) {
    if (this._id === null || (this._nc !== 'open' && this._nc !== 'pending')) return;
    if (this._ncPaused || !this._readWanted || this._owed === 0) return;
    if (!force && this._owed < Math.max(1, this._link.creditWindow >>> 2)) return;
    this._link.send({ credit: { socket_id: toLong(this._id), bytes: this._owed } });
    this._owed = 0;
  }

  _write(chunk, encoding, cb) {
    this._writev([{ chunk, encoding }], cb);
  }

  _writev(chunks, cb) {
    const batch = { cb, left: 0 };
    for (const { chunk } of chunks) {
      this._bytesAccepted += chunk.length;
      if (chunk.length === 0) continue;
      this._wq.push({ buf: chunk, fd: fdOf.get(chunk), end: false, batch });
      batch.left += 1;
    }
    if (batch.left === 0) {
      process.nextTick(cb);
      return;
    }
    this._pump();
  }

  _final(cb) {
    this._wq.push({ buf: null, end: true, batch: { cb, left: 1 } });
    this._pump();
  }

  // Sends queued data while netcore holds less than half its write queue
  // limit for this socket; the rest goes as acks come back. Each Write's
  // payload fits in max_frame (netcore refuses bigger frames).
  _pump() {
    if (this._id === null || (this._nc !== 'open' && this._nc !== 'pending')) return;
    const w = this._link.welcome;
    const limit = Math.max(1, w.max_write_queue >>> 1);
    const maxPiece = Math.max(1, Math.min(w.max_frame, limit));
    const id = toLong(this._id);
    while (this._wq.length > 0 && (this._inflight < limit || this._fifo.length === 0)) {
      let p = this._wq[0];
      if (p.end) {
        this._wq.shift();
        this._link.send({ end: { socket_id: id } });
      } else {
        if (p.buf.length > maxPiece) {
          // Split: the head goes now as its own Write, the rest stays queued.
          const head = { buf: p.buf.subarray(0, maxPiece), fd: p.fd, end: false, batch: p.batch };
          p.buf = p.buf.subarray(maxPiece);
          p.fd = undefined;
          p.batch.left += 1;
          p = head;
        } else {
          this._wq.shift();
        }
        const write = { socket_id: id };
        if (p.fd) write.fd_socket_id = toLong(p.fd._id);
        this._link.send({ write }, p.buf);
        this._inflight += p.buf.length;
      }
      this._fifo.push(p);
    }
  }

  _destroy(err, cb) {
    this.connecting = false;
    this._hadError = Boolean(err);
    this._uncount();
    // Callbacks of writes that will never be acknowledged.
    const failed = err || ncError('ERR_SOCKET_CLOSED', { message: 'socket is closed' });
    const batches = new Set([...this._fifo, ...this._wq].map((p) => p.batch));
    this._fifo = [];
    this._wq = [];
    this._inflight = 0;
    for (const b of batches) b.cb(failed);

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
    process.nextTick(() => this.emit('close', hadError));
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
    if (this.writableEnded && !this.destroyed) {
      // Today's Node: false, EPIPE to the callback, 'error' asynchronously.
      const er = ncError('EPIPE', { syscall: 'write', message: 'This socket has been ended' });
      if (cb) process.nextTick(cb, er);
      this.destroy(er);
      return false;
    }
    if (fd) {
      if (fd._id === null) throw argError(TypeError, 'EBADF', 'the socket whose fd is sent is not open');
      const buf = Buffer.isBuffer(data) ? Buffer.from(data) : Buffer.from(String(data), encoding || 'utf8');
      if (buf.length === 0) throw argError(TypeError, 'EINVAL', 'an fd must be sent with at least one byte of data');
      fdOf.set(buf, fd);
      return super.write(buf, cb);
    }
    return encoding === undefined ? super.write(data, cb) : super.write(data, encoding, cb);
  }

  pause() {
    if (!this._ncPaused) {
      this._ncPaused = true;
      if (this._nc === 'open') this._link.send({ pause: { socket_id: toLong(this._id) } });
      else this._deferred.set('pause', true);
    }
    return super.pause();
  }

  resume() {
    if (this._ncPaused) {
      this._ncPaused = false;
      this._deferred.delete('pause');
      if (this._nc === 'open') {
        this._link.send({ resume: { socket_id: toLong(this._id) } });
        this._readWanted = true;
        this._maybeGrant(true);
      }
    }
    return super.resume();
  }

  setTimeout(msecs, cb) {
    const ms = Number(msecs);
    if (!Number.isFinite(ms) || ms < 0) throw argError(RangeError, 'ERR_OUT_OF_RANGE', `timeout must be >= 0. Received ${msecs}`);
    this._timeoutMs = ms;
    if (cb) {
      if (ms === 0) this.removeListener('timeout', cb);
      else this.once('timeout', cb);
    }
    this._option('timeout', { set_timeout: { msecs: Math.floor(ms) } }, false);
    return this;
  }

  get timeout() {
    return this._timeoutMs || undefined;
  }

  setNoDelay(noDelay = true) {
    this._option('nodelay', { set_no_delay: { enable: Boolean(noDelay) } }, true);
    return this;
  }

  setKeepAlive(enable = false, initialDelay = 0) {
    const ms = Math.max(0, Math.floor(Number(initialDelay) || 0));
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
        if (!connected) continue;
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

  // Bytes not yet handed to the kernel: buffered here plus sent to netcore
  // and not acknowledged (Node: writableLength + the handle's queue).
  get bufferSize() {
    return this.writableLength;
  }

  get bytesRead() {
    return this._bytesRead;
  }

  // Node's definition: bytes given to the socket to write, queued ones included.
  get bytesWritten() {
    let n = this._bytesAccepted;
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
