'use strict';
// link.js: one handler connection to netcore (a ZeroMQ DEALER), shared by
// every server and socket of this process that uses the same endpoint.
//
// A link is made lazily by the first object that needs netcore, says Hello,
// and runs the operations queued meanwhile once Welcome arrives (ids need
// Welcome.id_prefix). It routes each event to the object named by its id,
// pings when it has been silent for lease_ms/3, and declares netcore gone
// when the ZeroMQ connection drops or a ping goes unanswered for lease_ms.
//
// Ownership: objects "hold" the link from the moment they ask netcore for
// something until netcore has said their last word (Closed, ServerClosed,
// ServerError). When nothing holds it the link says Bye and closes its
// DEALER, so this library never keeps a process alive on its own, just as
// Node's event loop exits when no handle is active.

const path = require('path');
const zmq = require('zeromq');
const { encodeCommand, decodeEvent, toBig } = require('./protocol');
const { ncError } = require('./errors');

const PROTOCOL_VERSION = 1;
// How long to wait for Welcome before ERR_NETCORE_UNAVAILABLE. netcore may be
// starting at the same moment as its handlers (scripts start both at once).
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

const links = new Map(); // endpoint -> Link in state 'connecting' or 'ready'

// netcore's default endpoint for this process, the rule netcore and every
// client library share: ipc://$XDG_RUNTIME_DIR/netcore/netcore.sock when
// XDG_RUNTIME_DIR is an absolute path, else for root
// ipc:///run/netcore/netcore.sock, else ipc:///tmp/netcore-<uid>/netcore.sock.
// NETCORE_ENDPOINT is not looked at here: it overrides this default.
function defaultEndpoint() {
  const xdg = process.env.XDG_RUNTIME_DIR || '';
  if (xdg.startsWith('/')) return `ipc://${xdg.replace(/\/+$/, '')}/netcore/netcore.sock`;
  const uid = process.geteuid();
  if (uid === 0) return 'ipc:///run/netcore/netcore.sock';
  return `ipc:///tmp/netcore-${uid}/netcore.sock`;
}

function resolveEndpoint(endpoint) {
  return endpoint || process.env.NETCORE_ENDPOINT || defaultEndpoint();
}

class Link {
  // The shared link for an endpoint (option, else NETCORE_ENDPOINT, else
  // the default), made on first use.
  static get(endpoint) {
    const ep = resolveEndpoint(endpoint);
    let link = links.get(ep);
    if (!link) {
      link = new Link(ep);
      links.set(ep, link);
    }
    return link;
  }

  constructor(endpoint) {
    this.endpoint = endpoint;
    this.state = 'connecting'; // -> 'ready' -> 'closed'
    this.sockets = new Map(); // BigInt id -> Socket
    this.servers = new Map(); // BigInt id -> Server
    this.holders = new Set(); // objects netcore knows (or will know) about
    this.pending = []; // operations waiting for Welcome
    this.outq = []; // messages waiting for the DEALER
    this.pumping = false;
    this.welcome = null;
    this.counter = 0n;
    this.shuttingDown = false;
    this.idleCheck = null;
    this.lastSent = Date.now();
    this.lastRecv = Date.now();
    this.pingSentAt = 0;
    this.pingNonce = 0;

    this.sock = new zmq.Dealer({ linger: 0, sendHighWaterMark: 10000, receiveHighWaterMark: 10000 });
    // A dropped connection means netcore died or restarted: every object of
    // this link is gone with it (a new netcore would not know our ids).
    this.sock.events.on('disconnect', () => this.fail('ERR_NETCORE_GONE'));
    this.sock.connect(endpoint);

    const timeout = Number(process.env.NETCORE_CONNECT_TIMEOUT_MS) || DEFAULT_CONNECT_TIMEOUT_MS;
    this.helloTimer = setTimeout(
      () => this.fail('ERR_NETCORE_UNAVAILABLE', `no answer from netcore at ${endpoint} within ${timeout} ms`),
      timeout,
    );
    this.send({
      hello: {
        version: PROTOCOL_VERSION,
        name: path.basename(process.argv[1] || 'node'),
        credit_window: Number(process.env.NETCORE_CREDIT_WINDOW) || 0,
        lease_ms: 0,
        batch_events: true, // several events per message; see dispatch()
      },
    });
    this.recvLoop();
  }

  // Runs fn now if Welcome arrived, else once it does (in call order).
  run(fn) {
    if (this.state === 'ready') fn();
    else this.pending.push(fn);
  }

  // A fresh id for an object this handler creates: prefix << 32 | ++n.
  newId() {
    this.counter += 1n;
    return (BigInt(this.welcome.id_prefix) << 32n) | this.counter;
  }

  get creditWindow() {
    return this.welcome.credit_window;
  }

  hold(obj) {
    this.holders.add(obj);
  }

  release(obj) {
    if (this.holders.delete(obj) && this.holders.size === 0) this.scheduleIdle();
  }

  // Closes the link once nothing holds it. Deferred so that an object made
  // right after the last one closed (a client reconnecting from its 'close'
  // handler) reuses this link.
  scheduleIdle() {
    if (!this.idleCheck && this.state !== 'closed') {
      this.idleCheck = setImmediate(() => {
        this.idleCheck = null;
        if (this.holders.size === 0 && this.state === 'ready') this.close();
      });
    }
  }

  // Queues one command (a plain object for netcore.v1.Command) with an
  // optional payload frame; sends are strictly in call order.
  send(cmd, payload) {
    if (this.state === 'closed') return;
    const env = encodeCommand(cmd);
    this.outq.push(payload === undefined ? [env] : [env, payload]);
    this.lastSent = Date.now();
    if (!this.pumping) this.pump();
  }

  async pump() {
    this.pumping = true;
    try {
      while (this.outq.length > 0 && this.state !== 'closed') {
        await this.sock.send(this.outq.shift());
      }
    } catch (err) {
      if (this.state !== 'closed') this.fail('ERR_NETCORE_GONE', err.message);
    }
    this.pumping = false;
    if (this.state === 'closing-bye' && this.outq.length === 0) this.finishClose();
  }

  async recvLoop() {
    try {
      for await (const frames of this.sock) this.dispatch(frames);
    } catch (err) {
      if (this.state !== 'closed') this.fail('ERR_NETCORE_GONE', err.message);
    }
  }

  dispatch(frames) {
    let ev;
    try {
      ev = decodeEvent(frames[0]);
    } catch (err) {
      process.emitWarning(`netcore: undecodable event (${err.message})`, { code: 'EPROTO' });
      return;
    }
    this.lastRecv = Date.now();
    this.pingSentAt = 0;
    if (ev.event !== 'batch') {
      this.routeSafely(ev.event, ev, frames[1]);
      return;
    }
    // An EventBatch (PROTOCOL.md 1.1): its events in order, one payload
    // frame per Data event.
    let next = 1;
    for (const inner of ev.batch.events) {
      this.routeSafely(inner.event, inner, inner.event === 'data' ? frames[next++] : undefined);
    }
  }

  routeSafely(kind, ev, payload) {
    try {
      this.route(kind, ev, payload);
    } catch (err) {
      // An exception thrown by an application listener: let it surface as an
      // uncaught exception, like a throw inside a Node 'data' handler, rather
      // than stopping this loop.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  route(kind, ev, payload) {
    const body = ev[kind];
    switch (kind) {
      case 'welcome':
        return this.onWelcome(body);
      case 'pong':
        return undefined;
      case 'error':
        return this.onError(body);
      case 'shutdown':
        return this.onShutdown(body);
      case 'listening':
      case 'server_error':
      case 'server_closed':
      case 'connection': {
        const id = toBig(body.server_id);
        const server = this.servers.get(id);
        if (server) server._onEvent(kind, body, ev.seq, id);
        else if (kind === 'connection') this.send({ destroy: { socket_id: body.socket_id } });
        return undefined;
      }
      default: {
        const sock = this.sockets.get(toBig(body.socket_id));
        if (sock) sock._onEvent(kind, body, payload, ev.seq);
        return undefined;
      }
    }
  }

  onWelcome(w) {
    if (this.state !== 'connecting') return;
    clearTimeout(this.helloTimer);
    this.welcome = w;
    this.state = 'ready';
    const period = Math.max(10, Math.floor(w.lease_ms / 3));
    this.pingTimer = setInterval(() => this.tick(period), period);
    this.pingTimer.unref();
    const ops = this.pending;
    this.pending = [];
    for (const op of ops) op();
    if (this.holders.size === 0) this.scheduleIdle();
  }

  // Liveness: a command at least every lease/3 (our lease), and a ping when
  // netcore has been quiet that long, which it must answer within the lease
  // (a frozen netcore keeps its ZeroMQ connection up; only silence shows it).
  tick(period) {
    const now = Date.now();
    if (this.pingSentAt && now - this.pingSentAt > this.welcome.lease_ms) {
      this.fail('ERR_NETCORE_GONE', 'netcore did not answer a ping');
      return;
    }
    if (now - this.lastSent >= period - 1 || (!this.pingSentAt && now - this.lastRecv >= period)) {
      if (!this.pingSentAt) this.pingSentAt = now;
      this.pingNonce += 1;
      this.send({ ping: { nonce: this.pingNonce } });
    }
  }

  onError(e) {
    const code = e.code;
    if (this.state === 'connecting') {
      // Hello itself was refused (ERR_UNSUPPORTED_VERSION): nothing can work.
      this.fail(code, e.message);
      return;
    }
    const sid = toBig(e.socket_id);
    const vid = toBig(e.server_id);
    const target = (sid && this.sockets.get(sid)) || (vid && this.servers.get(vid));
    if (target) {
      target._onCommandError(ncError(code, { message: e.message }), e.command);
      return;
    }
    // A command about an object that netcore already closed (a Destroy racing
    // a close) is answered EBADF: expected, nothing to report.
    if (code === 'EBADF' && (sid || vid)) return;
    process.emitWarning(`netcore rejected ${e.command || 'a command'}: ${code} ${e.message}`, { code });
  }

  onShutdown() {
    this.shuttingDown = true;
    for (const server of this.servers.values()) server._onShutdown();
  }

  // netcore is gone or was never there: every object errors and closes, and
  // the next object made for this endpoint starts a new link.
  fail(code, message) {
    if (this.state === 'closed') return;
    this.teardown();
    const err = ncError(code, { message });
    const victims = [...this.holders];
    this.holders.clear();
    this.pending = [];
    for (const obj of victims) obj._onLinkGone(err);
  }

  // Clean close when nothing holds the link any more: Bye, then close once
  // the Bye has left.
  close() {
    if (this.state === 'closed') return;
    if (links.get(this.endpoint) === this) links.delete(this.endpoint);
    this.send({ bye: {} });
    this.state = 'closing-bye';
    if (!this.pumping) this.finishClose();
  }

  finishClose() {
    this.sock.linger = 1000;
    this.teardown();
  }

  teardown() {
    if (links.get(this.endpoint) === this) links.delete(this.endpoint);
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    clearInterval(this.pingTimer);
    if (this.idleCheck) clearImmediate(this.idleCheck);
    this.outq = [];
    this.sock.close();
  }
}

module.exports = { Link, defaultEndpoint };
