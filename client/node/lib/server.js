'use strict';
// server.js: net.Server over netcore. An EventEmitter with Node's events
// ('listening', 'connection', 'error', 'close') and methods; the listening
// socket itself lives in netcore (Listen / Listening / ServerClose).
//
// States: idle -> pending (Listen sent) -> listening -> closing -> idle.
// A failed listen returns to idle, so the same server can listen again, as
// in Node. close() hands the current server id over to _closing and leaves
// the server free to listen again at once; 'close' follows that id's
// ServerClosed.
//
// listen() without a host, or on a path, answers address() and `listening`
// at once, as Node's synchronous bind does: the address is known (a path, or
// Node's any-address with the given port; for port 0 the kernel picks a free
// port through a bind of Node's own net that is released at once, and the
// Listen asks netcore for exactly that port). 'listening' still waits for
// netcore's answer, and a failure then comes as 'error' (see README).

const fs = require('fs');
const nodeNet = require('net');
const { EventEmitter } = require('events');
const { Link, linkOptions } = require('./link');
const { Socket, validatePort } = require('./socket');
const { toLong, nodeAddress, pathEndpoint, pathText } = require('./protocol');
const { ncError, argError } = require('./errors');

// Node's any-address of this host ('::' dual-stack, else '0.0.0.0') with a
// port the kernel says is free now, from a bind of Node's own net that is
// closed again at once (its fd is closed synchronously). Null if that fails.
function anyAddress() {
  const probe = nodeNet.createServer();
  probe.on('error', () => {});
  probe.listen(0);
  const a = probe.address();
  probe.close();
  return a && typeof a === 'object' ? a : null;
}

class Server extends EventEmitter {
  constructor(options, connectionListener) {
    super();
    if (typeof options === 'function') {
      connectionListener = options;
      options = {};
    }
    options = options || {};
    this.allowHalfOpen = Boolean(options.allowHalfOpen);
    this.pauseOnConnect = Boolean(options.pauseOnConnect);
    this._endpoint = options.endpoint;
    this._linkOpts = linkOptions(options); // serverKey, secretFile, reconnect (link.js)
    this._listenReq = null; // the last Listen's fields, for a listen again after a reconnect
    this._state = 'idle';
    this._link = null;
    this._id = null;
    this._address = null;
    this._connections = 0;
    this._maxConnections = undefined;
    this._listenCb = null;
    this._request = null;
    this._closing = new Map(); // id -> link: closed incarnations awaiting ServerClosed
    this._open = new Set(); // accepted sockets whose 'close' has not come (each knows its _serverId)
    this._draining = new Set(); // closing ids netcore forgot (EBADF): they close with their last connection
    this._gen = 0; // listen() generation, so a stale queued Listen never goes out
    if (connectionListener) this.on('connection', connectionListener);
  }

  // listen([port[, host[, backlog]]][, cb]) | listen(path[, backlog][, cb])
  // | listen(options[, cb]) | listen({ fd })[, cb]
  listen(...args) {
    const a = [...args];
    const cb = typeof a[a.length - 1] === 'function' ? a.pop() : null;
    let opts;
    if (Buffer.isBuffer(a[0])) {
      opts = { path: a[0], backlog: a[1] };
    } else if (a[0] !== null && typeof a[0] === 'object') {
      opts = { ...a[0] };
    } else if (typeof a[0] === 'string' && !/^\s*\d+\s*$/.test(a[0])) {
      opts = { path: a[0], backlog: a[1] };
    } else {
      opts = { port: a[0] === undefined || a[0] === null ? 0 : a[0] };
      if (typeof a[1] === 'string' || a[1] === undefined || a[1] === null) {
        opts.host = a[1] || undefined;
        opts.backlog = a[2];
      } else {
        opts.backlog = a[1];
      }
    }
    if (this._state === 'pending' || this._state === 'listening') {
      throw argError(Error, 'ERR_SERVER_ALREADY_LISTEN', 'Listen method has been called more than once without closing.');
    }

    const req = {
      allow_half_open: this.allowHalfOpen,
      backlog: Number(opts.backlog) || 0,
      group: opts.group ? String(opts.group) : '',
    };
    this._address = null;
    this._probed = false;
    if (opts.fd !== undefined && opts.fd !== null) {
      req.fd = Number(opts.fd);
      this._request = { fd: req.fd };
    } else if (opts.path !== undefined && opts.path !== null) {
      Object.assign(req, pathEndpoint(opts.path));
      const given = pathText(opts.path);
      this._request = { path: given, readableAll: Boolean(opts.readableAll), writableAll: Boolean(opts.writableAll) };
      this._address = { family: 'unix', address: given };
    } else {
      let port = validatePort(opts.port === undefined ? 0 : opts.port);
      const host = opts.host ? String(opts.host) : '';
      if (!host) {
        const any = anyAddress();
        if (any) {
          if (port === 0) {
            port = any.port;
            this._probed = true;
          }
          this._address = { address: any.address, family: any.family, port };
        }
      }
      req.tcp = { host, port };
      this._request = { host: host || (this._address ? this._address.address : '::'), port };
    }
    if (opts.endpoint) this._endpoint = opts.endpoint;
    if (cb) {
      this._listenCb = cb;
      this.once('listening', cb);
    }

    const link = Link.get(this._endpoint, this._linkOpts); // throws EINVAL for bad keys
    this._state = 'pending';
    this._link = link;
    this._listenReq = req;
    link.hold(this);
    const gen = ++this._gen;
    link.run(() => this._sendListen(link, gen));
    return this;
  }

  // Sends the Listen of this incarnation (ids need Welcome): not when a later
  // listen() (gen) or a close() came meanwhile. maxConnections is read when it
  // goes out, so a value set meanwhile applies.
  _sendListen(link, gen) {
    if (this._state !== 'pending' || this._link !== link) return;
    if (gen !== undefined && gen !== this._gen) return;
    this._id = link.newId();
    link.servers.set(this._id, this);
    this._sendListenCmd(link);
  }

  // The Listen command under this server's id, maxConnections as it is now.
  _sendListenCmd(link) {
    const max = Math.max(0, Number(this._maxConnections) || 0);
    link.send({ listen: { server_id: toLong(this._id), ...this._listenReq, max_connections: max } });
  }

  // The resumed netcore lacks this server (its Listen was lost with the old
  // one, protocol 1.4): the same Listen, the same id.
  _listenAgain(link) {
    if (this._state !== 'pending' || this._link !== link || this._id === null) return;
    this._sendListenCmd(link);
  }

  // The link to netcore was lost and reconnects: true if this server listens
  // again after the next Welcome (it was listening or about to), on the port
  // netcore had chosen for a port-0 listen. It keeps holding the link.
  _linkLost() {
    if (this._state !== 'pending' && this._state !== 'listening') return false;
    const req = this._listenReq;
    if (req.tcp && req.tcp.port === 0 && this._address && this._address.port) {
      this._listenReq = { ...req, tcp: { ...req.tcp, port: this._address.port } };
    }
    this._state = 'pending';
    this._id = null;
    this._address = null;
    this._connections = 0;
    return true;
  }

  _relisten(link) {
    this._sendListen(link);
  }

  // The seed's listenFD(fd): adopt a listening fd netcore was started with.
  listenFD(fd, cb) {
    return this.listen({ fd }, cb);
  }

  _onEvent(kind, ev, seq, id) {
    if (id !== undefined && this._closing.has(id)) return this._onClosingEvent(kind, ev, id);
    if (id !== undefined && id !== this._id) return undefined;
    switch (kind) {
      case 'listening':
        if (this._state !== 'pending') return undefined;
        if (this._request && this._request.path !== undefined) return this._onPathListening(ev);
        this._state = 'listening';
        this._address = nodeAddress(ev.address);
        this._listenCb = null;
        this.emit('listening');
        return undefined;
      case 'server_error':
        return this._onServerError(ev);
      case 'server_closed': {
        const link = this._link;
        if (link && link.reconnect && link.shuttingDown && this._state === 'listening') {
          // netcore is restarting: listen again on the next one.
          link.servers.delete(this._id);
          this._linkLost();
          link.relisten.push(this);
          return undefined;
        }
        return this._finish();
      }
      case 'connection':
        return this._onConnection(ev);
      case 'adopted':
        return this._onConnection(ev, true);
      default:
        return undefined;
    }
  }

  // A UNIX listener: Node's readableAll / writableAll add read / write
  // permission for everyone to the socket file. address() stays the path as
  // given (Node's too), even when it was relative.
  _onPathListening(ev) {
    const req = this._request;
    if (req.readableAll || req.writableAll) {
      const file = ev.address && ev.address.address;
      try {
        const want = (req.readableAll ? 0o444 : 0) | (req.writableAll ? 0o222 : 0);
        const mode = fs.statSync(file).mode & 0o7777;
        if ((mode & want) !== want) fs.chmodSync(file, mode | want);
      } catch (e) {
        const err = ncError(e.code || 'EPERM', { syscall: 'uv_pipe_chmod', message: e.message, address: req.path });
        this.close();
        this.emit('error', err);
        return;
      }
    }
    this._state = 'listening';
    this._listenCb = null;
    this.emit('listening');
  }

  // An event of an incarnation close() already gave up.
  _onClosingEvent(kind, ev, id) {
    const link = this._closing.get(id);
    if (kind === 'connection' || kind === 'adopted') {
      link.send({ destroy: { socket_id: ev.socket_id } });
    } else if (kind === 'server_closed' || kind === 'server_error') {
      this._closing.delete(id);
      this._draining.delete(id);
      link.servers.delete(id);
      if (this._state === 'closing' && this._closing.size === 0) this._state = 'idle';
      this._maybeRelease(link);
      this.emit('close');
    }
  }

  // An Error about the ServerClose of incarnation id: true if it is the
  // answer to a ServerClose said again after a takeover (Link onResumed,
  // PROTOCOL.md 16.1). ERR_SERVER_NOT_RUNNING: netcore is closing it already
  // (connections open), its ServerClosed will come. EBADF: netcore does not
  // know the id, it closed on the old netcore and that ServerClosed was lost
  // (or the old one shipped it closing, without its connections' server):
  // the close completes once every connection accepted under id has closed,
  // as Node's does (_connectionClosed), at once if none is open.
  _onCloseError(code, id) {
    if (code === 'ERR_SERVER_NOT_RUNNING') return true;
    if (code !== 'EBADF') return false;
    if (this._openUnder(id)) this._draining.add(id);
    else this._onClosingEvent('server_closed', {}, id);
    return true;
  }

  _openUnder(id) {
    for (const s of this._open) if (s._serverId === id) return true;
    return false;
  }

  // An accepted socket emitted 'close' (socket.js _emitClose): a closing id
  // netcore forgot completes with its last connection.
  _connectionClosed(sock) {
    this._open.delete(sock);
    const id = sock._serverId;
    if (!this._draining.has(id) || this._openUnder(id)) return;
    this._draining.delete(id);
    if (this._closing.has(id)) this._onClosingEvent('server_closed', {}, id);
  }

  _maybeRelease(link) {
    if (this._state !== 'idle' && this._link === link) return;
    for (const l of this._closing.values()) if (l === link) return;
    link.release(this);
  }

  // adopted: a connection of a handler that died or left (PROTOCOL.md 13),
  // emitted as 'connection' with socket.adopted === true.
  _onConnection(ev, adopted) {
    const sock = Socket._accepted(this._link, ev, this, adopted);
    sock._serverId = this._id;
    this._open.add(sock);
    this._connections += 1;
    if (this._state !== 'listening') {
      // close() was called: Node accepts nothing after it.
      sock.destroy();
      return;
    }
    if (this.pauseOnConnect) sock.pause();
    this.emit('connection', sock);
  }

  _onServerError(ev) {
    const req = this._request || {};
    if (this._probed && ev.code === 'EADDRINUSE' && this._link) {
      // The port the kernel offered was taken before netcore bound it: let
      // netcore's kernel pick one instead (address() follows 'listening').
      const link = this._link;
      link.servers.delete(this._id);
      this._id = null;
      this._probed = false;
      this._req.tcp.port = 0;
      this._address = null;
      this._sendListen(link);
      return;
    }
    this._forget();
    if (this._listenCb) {
      // Node never runs the callback of a failed listen; a later successful
      // listen must not run it either.
      this.removeListener('listening', this._listenCb);
      this._listenCb = null;
    }
    let err;
    if (req.path !== undefined) err = ncError(ev.code, { syscall: 'listen', message: ev.message, address: req.path });
    else if (req.fd !== undefined) err = ncError(ev.code, { syscall: 'listen', message: ev.message });
    else err = ncError(ev.code, { syscall: 'listen', message: ev.message, address: req.host, port: req.port });
    this.emit('error', err);
  }

  _onShutdown() {
    if (this._state === 'listening' || this._state === 'pending') {
      this.emit('error', ncError('ERR_NETCORE_SHUTDOWN'));
    }
  }

  _onCommandError(err) {
    this.emit('error', err);
  }

  _onLinkGone(err) {
    const current = this._state === 'pending' || this._state === 'listening';
    const closing = this._closing.size > 0 || this._state === 'closing';
    this._closing.clear();
    this._draining.clear();
    this._forget();
    if (current) this.emit('error', err);
    if (current || closing) this.emit('close');
  }

  // ServerClosed: every connection is gone; the server may listen again.
  _finish() {
    this._forget();
    this.emit('close');
  }

  _forget() {
    const link = this._link;
    if (link && this._id !== null) link.servers.delete(this._id);
    if (link) {
      // Closed while waiting to listen again on the next netcore: it never will.
      const i = link.relisten.indexOf(this);
      if (i >= 0) link.relisten.splice(i, 1);
    }
    this._state = this._closing.size > 0 ? 'closing' : 'idle';
    this._id = null;
    this._address = null;
    this._link = null;
    if (link) this._maybeRelease(link);
  }

  close(cb) {
    if (typeof cb === 'function') {
      if (this._state === 'idle') {
        this.once('close', () => cb(argError(Error, 'ERR_SERVER_NOT_RUNNING', 'Server is not running.')));
      } else {
        this.once('close', cb);
      }
    }
    if (this._state === 'pending' || this._state === 'listening') {
      if (this._listenCb) {
        this.removeListener('listening', this._listenCb);
        this._listenCb = null;
      }
      if (this._id !== null) {
        // netcore closes this id; the server is free to listen again now.
        const link = this._link;
        this._closing.set(this._id, link);
        link.send({ server_close: { server_id: toLong(this._id) } });
        this._id = null;
        this._forget();
        if (this._refd === false) this._applyRef();
      } else {
        // Still waiting for Welcome: netcore never heard of this server.
        this._forget();
        process.nextTick(() => this.emit('close'));
      }
    } else if (this._state === 'idle') {
      process.nextTick(() => this.emit('close'));
    }
    return this;
  }

  // Node: { address, family, port } for TCP, the path string for UNIX.
  address() {
    if (!this.listening || !this._address) return null;
    if (this._address.family === 'unix') return this._address.address;
    return { address: this._address.address, family: this._address.family, port: this._address.port };
  }

  get listening() {
    return this._state === 'listening' || (this._state === 'pending' && this._address !== null);
  }

  get connections() {
    return this._connections;
  }

  getConnections(cb) {
    process.nextTick(cb, null, this._connections);
    return this;
  }

  get maxConnections() {
    return this._maxConnections;
  }

  set maxConnections(n) {
    this._maxConnections = n;
    if (this._id !== null && (this._state === 'pending' || this._state === 'listening')) {
      this._link.send({
        server_set_max_connections: { server_id: toLong(this._id), max_connections: Math.max(0, Number(n) || 0) },
      });
    }
  }


  // The seed's server.pause(msecs): accept nothing for msecs (default 1000).
  // Node's handle refs: while every object of a link is unref'd, the link
  // keeps the process alive no more (link.js).
  ref() {
    this._refd = true;
    this._applyRef();
    return this;
  }

  unref() {
    this._refd = false;
    this._applyRef();
    return this;
  }

  // An unref'd server still waits for netcore's answer to its listen() or
  // close() ('listening', 'close'), which Node gives in the same turn.
  _keepsAlive() {
    return this._refd !== false || this._state === 'pending' || this._closing.size > 0;
  }

  _applyRef() {
    if (this._link) this._link.setRef(this);
    for (const l of this._closing.values()) l.setRef(this);
  }

  pause(msecs) {
    if (this._id !== null && this._state === 'listening') {
      this._link.send({ server_pause: { server_id: toLong(this._id), msecs: Number(msecs) || 0 } });
    }
    return this;
  }
}

module.exports = { Server };
