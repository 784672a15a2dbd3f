'use strict';
// server.js: net.Server over netcore. An EventEmitter with Node's events
// ('listening', 'connection', 'error', 'close') and methods; the listening
// socket itself lives in netcore (Listen / Listening / ServerClose).
//
// States: idle -> pending (Listen sent) -> listening -> closing -> idle.
// A failed listen returns to idle, so the same server can listen again, as
// in Node.

const { EventEmitter } = require('events');
const { Link, linkOptions } = require('./link');
const { Socket, validatePort } = require('./socket');
const { toLong, nodeAddress, pathEndpoint, pathText } = require('./protocol');
const { ncError, argError } = require('./errors');

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
      max_connections: this._maxConnections || 0,
      group: opts.group ? String(opts.group) : '',
    };
    if (opts.fd !== undefined && opts.fd !== null) {
      req.fd = Number(opts.fd);
      this._request = { fd: req.fd };
    } else if (opts.path !== undefined && opts.path !== null) {
      Object.assign(req, pathEndpoint(opts.path));
      this._request = { path: pathText(opts.path) };
    } else {
      const port = validatePort(opts.port === undefined ? 0 : opts.port);
      req.tcp = { host: opts.host ? String(opts.host) : '', port };
      this._request = { host: opts.host || '0.0.0.0', port };
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
    link.run(() => this._sendListen(link));
    return this;
  }

  _sendListen(link) {
    if (this._state !== 'pending' || this._link !== link) return;
    this._id = link.newId();
    link.servers.set(this._id, this);
    link.send({ listen: { server_id: toLong(this._id), ...this._listenReq } });
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

  _onEvent(kind, ev) {
    switch (kind) {
      case 'listening':
        if (this._state !== 'pending') return;
        this._state = 'listening';
        this._address = nodeAddress(ev.address);
        this._listenCb = null;
        this.emit('listening');
        return;
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
    }
  }

  // adopted: a connection of a handler that died or left (PROTOCOL.md 13),
  // emitted as 'connection' with socket.adopted === true.
  _onConnection(ev, adopted) {
    const sock = Socket._accepted(this._link, ev, this, adopted);
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
    const wasClosing = this._state === 'closing';
    const req = this._request || {};
    this._forget();
    if (this._listenCb) {
      // Node never runs the callback of a failed listen; a later successful
      // listen must not run it either.
      this.removeListener('listening', this._listenCb);
      this._listenCb = null;
    }
    if (wasClosing) {
      this.emit('close');
      return;
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
    const active = this._state !== 'idle';
    const wasClosing = this._state === 'closing';
    this._forget();
    if (!active) return;
    if (!wasClosing) this.emit('error', err);
    this.emit('close');
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
    this._state = 'idle';
    this._id = null;
    this._address = null;
    this._link = null;
    if (link) link.release(this);
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
      this._state = 'closing';
      if (this._listenCb) {
        this.removeListener('listening', this._listenCb);
        this._listenCb = null;
      }
      if (this._id !== null) {
        this._link.send({ server_close: { server_id: toLong(this._id) } });
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
    if (this._state !== 'listening' || !this._address) return null;
    if (this._address.family === 'unix') return this._address.address;
    return { address: this._address.address, family: this._address.family, port: this._address.port };
  }

  get listening() {
    return this._state === 'listening';
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
  pause(msecs) {
    if (this._id !== null && this._state === 'listening') {
      this._link.send({ server_pause: { server_id: toLong(this._id), msecs: Number(msecs) || 0 } });
    }
    return this;
  }
}

module.exports = { Server };
