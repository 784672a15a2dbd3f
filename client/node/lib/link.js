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
// Reconnection (on by default; the option reconnect: false or
// NETCORE_RECONNECT=0 turn it off): when the link is lost after a Welcome
// (ZeroMQ 'disconnect', no answer to a ping within the lease, ERR_NO_HELLO,
// a Shutdown), every socket gets 'error' ERR_NETCORE_GONE then 'close', and
// the link opens a new DEALER (libzmq retries 50 ms doubling to 500 ms; a
// fresh DEALER every 2 s without Welcome), says Hello again, and every
// server that was listening listens again with the same options on the port
// it had ('listening' again; a listen that fails now is that server's
// 'error'). A refusal (EACCES, EPROTO) ends everything instead.
//
// CURVE (tcp:// endpoints of a netcore with --curve-secret-file): the
// serverKey and secretFile options, else NETCORE_SERVER_KEY and
// NETCORE_SECRET_FILE (lib/keys.js).
//
// Ownership: objects "hold" the link from the moment they ask netcore for
// something until netcore has said their last word (Closed, ServerClosed,
// ServerError). When nothing holds it the link says Bye and closes its
// DEALER, so this library never keeps a process alive on its own, just as
// Node's event loop exits when no handle is active.
//
// ref()/unref() (Node's handle refs): an object's _refd === false marks it
// unref'd, and the link keeps the holders that are not (counted). While
// there is none the link must not keep the event loop alive, yet it keeps
// serving: what keeps a loop alive in the npm zeromq package is only a
// pending receive() (its uv_poll on ZMQ_FD runs while one waits) and the
// same for the monitor's Observer. So an unref'd link has neither pending:
// the DEALER's last receive is woken by a Ping (its Pong), then an unref'd
// timer reads what `sock.readable` says is there (1 ms after traffic,
// doubling to 50 ms when idle); the Observer is replaced by a fresh one that
// nobody reads until a ref'd holder comes back (libzmq keeps its events),
// and the old one is closed. A netcore that dies meanwhile is
// found by the unanswered ping (the lease) instead of the 'disconnect'.
// Every timer of the link follows the same rule.

const path = require('path');
const zmq = require('zeromq');
const { encodeCommand, decodeEvent, toBig, toLong, toNum } = require('./protocol');
const { ncError } = require('./errors');
const { curveKeys } = require('./keys');

const PROTOCOL_VERSION = 1;
// How long to wait for Welcome before ERR_NETCORE_UNAVAILABLE. netcore may be
// starting at the same moment as its handlers (scripts start both at once).
const DEFAULT_CONNECT_TIMEOUT_MS = 5000;
const RELINK_HELLO_TIMEOUT_MS = 2000; // reconnecting: a fresh DEALER after this long without Welcome
// Before Welcome, how long a failed send or receive waits for the monitor to
// say why (a refused handshake) before the link fails as gone (ioFailed()).
const HANDSHAKE_VERDICT_MS = 1000;
const RESUME_WAIT_MS = 5000; // a session waits this long for a netcore that resumes it (PROTOCOL.md 16.1)

const links = new Map(); // endpoint -> Link in state 'connecting' or 'ready'
// zeromq objects are not extensible: which DEALERs have a receive() pending
// and which Observers are being read.
const receiving = new WeakSet();
const reading = new WeakSet();
// A zeromq Observer monitors at inproc://zmq.monitor.<its C++ address>, an
// endpoint libzmq frees only once the old monitor is reaped: a closed
// Observer collected at once lets the next one reuse the address
// (EADDRINUSE). The last closed ones stay referenced for a while.
const retired = [];
function retire(obs) {
  if (!obs.closed) obs.close();
  retired.push(obs);
  if (retired.length > 32) retired.shift();
}

// libzmq reports a socket's events to its monitor with a blocking send, from
// its I/O thread: an Observer closed while its DEALER still lives (a closed
// DEALER lingers, reconnects and reports until libzmq reaps it) blocks that
// thread for good on the next event, and with it every connection of the
// process (no DEALER connects any more: a link lost to a netcore takeover
// never comes back; issue 12). So a DEALER is closed under a fresh Observer
// that takes its monitor over (zmq_socket_monitor replaces the old one under
// its lock), nobody reads, and that is closed only once libzmq is done with
// the DEALER (its linger is at most 1 s); the old Observer, no longer the
// monitor, closes at once (its pending receive() ends).
const TAIL_MS = 5000;
function closeWatched(sock, obs) {
  let keep = obs; // the Observer that is the DEALER's monitor now
  if (!sock.closed) {
    try {
      keep = new zmq.Observer(sock);
      if (obs) retire(obs);
    } catch (err) {
      keep = obs; // the monitor stays obs's: it stays open a while instead
    }
    sock.close();
  }
  if (keep && !keep.closed) setTimeout(() => retire(keep), TAIL_MS).unref();
}

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

// The link options of a Server's or Socket's options object.
function linkOptions(options) {
  const o = options || {};
  return { serverKey: o.serverKey, secretFile: o.secretFile, reconnect: o.reconnect };
}

class Link {
  // The shared link for an endpoint (option, else NETCORE_ENDPOINT, else
  // the default) and link options (linkOptions()), made on first use.
  // Throws EINVAL for bad CURVE keys (nothing is made then).
  static get(endpoint, opts = {}) {
    const ep = resolveEndpoint(endpoint);
    const key = JSON.stringify([ep, opts.serverKey || '', opts.secretFile || '', opts.reconnect]);
    let link = links.get(key);
    if (!link) {
      const curve = curveKeys(ep, opts.serverKey, opts.secretFile);
      let reconnect = process.env.NETCORE_RECONNECT !== '0';
      if (opts.reconnect !== undefined) reconnect = Boolean(opts.reconnect);
      link = new Link(ep, key, curve, reconnect);
      links.set(key, link);
    }
    return link;
  }

  constructor(endpoint, key, curve, reconnect) {
    this.endpoint = endpoint;
    this.key = key;
    this.curve = curve;
    this.reconnect = reconnect;
    this.relinking = false;
    // Session resumption after a netcore takeover (PROTOCOL.md 16.1).
    this.resumable = reconnect && process.env.NETCORE_RESUME !== '0';
    this.resuming = false;
    this.resumeTimer = null;
    this.held = []; // socket commands said while resuming (writes and credit are recomputed)
    this.relisten = []; // servers to listen again after the next Welcome
    this.state = 'connecting'; // -> 'ready' -> 'closed'
    this.sockets = new Map(); // BigInt id -> Socket
    this.servers = new Map(); // BigInt id -> Server
    this.holders = new Set(); // objects netcore knows (or will know) about
    this.counted = new Set(); // holders that are not unref'd (_refd !== false)
    this.refd = true; // receiving with a pending receive() (else: polling)
    this.pollTimer = null;
    this.polling = false;
    this.verdictTimer = null; // ioFailed() before Welcome
    this.pipeWaiters = new Map(); // BigInt dest id -> adopted source piping into it, dest not adopted yet (lib/pipe.js)
    this.pending = []; // operations waiting for Welcome
    this.outq = []; // messages waiting for the DEALER
    this.batch = []; // encoded commands of this turn (PROTOCOL.md 1.1)
    this.batchFrames = []; // their Write payloads, in order
    this.batchScheduled = false;
    this.pumping = false;
    this.welcome = null;
    this.counter = 0n;
    this.shuttingDown = false;
    this.idleCheck = null;
    this.lastSent = Date.now();
    this.lastRecv = Date.now();
    this.pingSentAt = 0;
    this.pingNonce = 0;
    this.statsAsked = []; // Stats requests, answered in order

    this.openDealer();
  }

  // A new DEALER that says Hello: the first, and one per reconnection
  // attempt, so nothing queued for a lost netcore reaches the next one.
  openDealer() {
    const endpoint = this.endpoint;
    const opts = {
      linger: 0,
      sendHighWaterMark: 10000,
      receiveHighWaterMark: 10000,
      reconnectInterval: 50,
      reconnectMaxInterval: 500,
    };
    if (this.curve) {
      opts.curveServerKey = this.curve.serverKey;
      opts.curvePublicKey = this.curve.publicKey;
      opts.curveSecretKey = this.curve.secretKey;
    }
    const sock = new zmq.Dealer(opts);
    this.sock = sock;
    this.outq = [];
    // Commands batched for the lost netcore (Credit, Write, Destroy of the
    // sockets that just failed) must not precede Hello on the next one: it
    // would answer ERR_NO_HELLO and the link would fail for good.
    this.batch = [];
    this.batchFrames = [];
    this.watch(sock);
    sock.connect(endpoint);

    const timeout = this.relinking
      ? RELINK_HELLO_TIMEOUT_MS
      : Number(process.env.NETCORE_CONNECT_TIMEOUT_MS) || DEFAULT_CONNECT_TIMEOUT_MS;
    this.helloTimer = setTimeout(() => {
      if (this.relinking) this.reopen();
      else this.fail('ERR_NETCORE_UNAVAILABLE', `no answer from netcore at ${endpoint} within ${timeout} ms`);
    }, timeout);
    if (!this.refd) this.helloTimer.unref();
    const hello = {
      version: PROTOCOL_VERSION,
      name: path.basename(process.argv[1] || 'node'),
      credit_window: Number(process.env.NETCORE_CREDIT_WINDOW) || 0,
      lease_ms: 0,
      batch_events: true, // several events per message; see dispatch()
      // Acks only where something waits (Write.ack_now, End.ack_now); the
      // rest ride along with the socket's next event (PROTOCOL.md 7).
      lazy_acks: true,
      service: process.env.NETCORE_SERVICE || '', // successors inherit (PROTOCOL.md 13)
      resumable: this.resumable,
    };
    if (this.resuming) {
      hello.resume_token = this.welcome.session_token;
      hello.resume_sockets = [];
      for (const sock of this.sockets.values()) {
        const e = sock._resumeEntry();
        if (e) hello.resume_sockets.push(e);
      }
      // Servers whose Listen is unanswered (protocol 1.4).
      hello.resume_servers = [];
      for (const [id, srv] of this.servers) {
        if (srv._state === 'pending' && srv._id === id) hello.resume_servers.push(toLong(id));
      }
    }
    this.send({ hello });
    if (this.refd) this.recvLoop(sock);
    else this.schedulePoll(1);
  }

  // Reconnecting and no Welcome on this DEALER: start afresh.
  reopen() {
    this.closeDealer();
    this.pumping = false;
    this.openDealer();
  }

  closeDealer() {
    clearTimeout(this.pollTimer);
    this.pollTimer = null;
    clearTimeout(this.verdictTimer);
    this.verdictTimer = null;
    // The Observer's pending receive() ends (undefined) instead of waiting
    // for a MONITOR_STOPPED that does not always come (closeWatched).
    closeWatched(this.sock, this.obs);
  }

  // The monitor of a DEALER: read while the link is ref'd (see the top).
  watch(sock) {
    const obs = new zmq.Observer(sock);
    this.obs = obs;
    if (this.refd) this.readMonitor(sock, obs);
  }

  async readMonitor(sock, obs) {
    reading.add(obs);
    try {
      while (!obs.closed && obs === this.obs && this.refd) {
        const ev = await obs.receive();
        if (ev) this.onMonitor(sock, ev);
      }
    } catch (err) {
      // closed under us (the DEALER went): nothing more to read
    }
    reading.delete(obs);
    if (obs !== this.obs) retire(obs);
  }

  onMonitor(sock, ev) {
    const endpoint = this.endpoint;
    switch (ev.type) {
      // A dropped connection means netcore died or restarted: every socket of
      // this link is gone with it (a new netcore would not know our ids).
      // Before Welcome a drop is libzmq's to retry (or a handshake failure).
      case 'disconnect':
        if (sock !== this.sock) break;
        if (this.state === 'ready') this.fail('ERR_NETCORE_GONE', `netcore at ${endpoint} went away`);
        else if (this.state === 'connecting' && this.relinking) {
          // Reconnecting, and this DEALER's connection dropped before Welcome:
          // it may have reached a netcore being taken over, which took our
          // Hello with it. A fresh DEALER soon, not after the Hello timeout.
          clearTimeout(this.helloTimer);
          this.helloTimer = setTimeout(() => {
            if (sock === this.sock && this.state === 'connecting' && this.relinking) this.reopen();
          }, 100);
        }
        break;
      case 'handshake:error:auth': {
        if (sock !== this.sock || this.state !== 'connecting') return;
        const why = this.curve
          ? "its public key is not in netcore's --curve-allow file"
          : "its uid may not connect (netcore's own uid or gid, or --allow-uid)";
        this.refused('EACCES', `netcore at ${endpoint} refused this handler (ZAP status ${ev.error && ev.error.status}): ${why}`);
        break;
      }
      case 'handshake:error:protocol': {
        if (sock !== this.sock || this.state !== 'connecting') return;
        const why = this.curve
          ? 'does netcore use CURVE (--curve-secret-file) on this endpoint?'
          : 'netcore uses CURVE here: set NETCORE_SERVER_KEY and NETCORE_SECRET_FILE';
        this.refused('EPROTO', `the handshake with netcore at ${endpoint} failed: ${why}`);
        break;
      }
      default:
        break;
    }
  }

  // Node's ref()/unref() of a server or socket (obj._refd is already set),
  // or a change of what an unref'd one waits for.
  setRef(obj) {
    if (!this.holders.has(obj)) return;
    if (keepsAlive(obj)) this.counted.add(obj);
    else this.counted.delete(obj);
    this.updateRef();
  }

  // Switches between receiving (ref'd) and polling (nothing ref'd holds us).
  updateRef() {
    // No holder at all: the link closes at the next check (scheduleIdle).
    const want = this.counted.size > 0 || this.holders.size === 0;
    if (want === this.refd || this.state === 'closed') return;
    this.refd = want;
    if (this.helloTimer) {
      if (want) this.helloTimer.ref();
      else this.helloTimer.unref();
    }
    if (this.verdictTimer) {
      if (want) this.verdictTimer.ref();
      else this.verdictTimer.unref();
    }
    const sock = this.sock;
    if (sock.closed) return; // between DEALERs (relink): the next one starts in this mode
    if (want) {
      clearTimeout(this.pollTimer);
      this.pollTimer = null;
      if (!this.polling && !receiving.has(sock)) this.recvLoop(sock);
      if (!reading.has(this.obs)) this.readMonitor(sock, this.obs);
      return;
    }
    // A fresh Observer takes the monitor over; closing the old one ends its
    // pending receive. The DEALER's pending receive ends with the Pong
    // (before Welcome, with the Welcome).
    const old = this.obs;
    this.obs = new zmq.Observer(sock);
    retire(old);
    if (this.state === 'ready') {
      this.pingNonce += 1;
      this.send({ ping: { nonce: this.pingNonce } });
    }
  }

  // Unref'd: reads what the DEALER holds without a pending receive.
  schedulePoll(wait) {
    if (this.pollTimer || this.refd || this.state === 'closed') return;
    this.pollTimer = setTimeout(() => this.poll(wait), wait);
    this.pollTimer.unref();
  }

  async poll(wait) {
    this.pollTimer = null;
    const sock = this.sock;
    if (this.refd || this.state === 'closed' || receiving.has(sock)) return;
    let got = 0;
    this.polling = true;
    try {
      while (!this.refd && sock === this.sock && this.state !== 'closed' && sock.readable) {
        const frames = await sock.receive(); // readable: resolves without polling
        if (sock !== this.sock) return;
        this.dispatch(frames);
        got += 1;
      }
    } catch (err) {
      this.ioFailed(sock, err);
      return;
    } finally {
      this.polling = false;
    }
    if (sock !== this.sock || this.state === 'closed') return;
    if (this.refd) this.recvLoop(sock);
    else this.schedulePoll(got > 0 ? 1 : Math.min(wait * 2, 50));
  }

  // A send or receive of this DEALER failed. After Welcome, netcore is gone.
  // Before it, the failure may be a refused handshake's: libzmq drops the
  // connection's pipe when the handshake fails, and a send that found the
  // pipe there a moment before gets EAGAIN, while the monitor's report of the
  // refusal (EACCES, EPROTO: onMonitor) is still on its way. The monitor gets
  // HANDSHAKE_VERDICT_MS to say so before the link fails as gone.
  ioFailed(sock, err) {
    if (this.state === 'closed' || sock !== this.sock) return;
    if (this.state !== 'connecting') {
      this.fail('ERR_NETCORE_GONE', err.message);
      return;
    }
    if (this.verdictTimer) return;
    this.verdictTimer = setTimeout(() => {
      this.verdictTimer = null;
      if (this.state === 'connecting' && sock === this.sock) this.fail('ERR_NETCORE_GONE', err.message);
    }, HANDSHAKE_VERDICT_MS);
    if (!this.refd) this.verdictTimer.unref();
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

  // Asks netcore for its numbers (the Stats command, PROTOCOL.md 14): a
  // Promise of { instance_id, uptime_ms, families: [{ name, help, type,
  // samples: [{ name, labels: {...}, value }] }] }, the series and values
  // of netcore's Prometheus /metrics.
  stats() {
    return new Promise((resolve, reject) => {
      const req = {
        resolve,
        _onLinkGone: reject,
      };
      this.hold(req);
      this.run(() => {
        this.statsAsked.push(req);
        this.send({ stats: {} });
      });
    });
  }

  onStats(st) {
    const req = this.statsAsked.shift();
    if (!req) return;
    this.release(req);
    req.resolve({
      instance_id: st.instance_id,
      uptime_ms: Number(st.uptime_ms),
      families: st.families.map((f) => ({
        name: f.name,
        help: f.help,
        type: f.type,
        samples: f.samples.map((s) => ({
          name: s.name,
          labels: Object.fromEntries(s.labels.map((l) => [l.name, l.value])),
          value: s.value,
        })),
      })),
    });
  }

  hold(obj) {
    if (this.holders.has(obj)) {
      this.setRef(obj);
      return;
    }
    this.holders.add(obj);
    if (keepsAlive(obj)) this.counted.add(obj);
    this.updateRef();
  }

  // Forgets a holder; true if it was one.
  unhold(obj) {
    if (!this.holders.delete(obj)) return false;
    this.counted.delete(obj);
    this.updateRef();
    return true;
  }

  release(obj) {
    if (this.unhold(obj) && this.holders.size === 0) this.scheduleIdle();
  }

  // Closes the link once nothing holds it. Deferred so that an object made
  // right after the last one closed (a client reconnecting from its 'close'
  // handler) reuses this link.
  scheduleIdle() {
    if (!this.idleCheck && this.state !== 'closed') {
      this.idleCheck = setImmediate(() => {
        this.idleCheck = null;
        if (this.holders.size !== 0) return;
        if (this.state === 'ready') this.close();
        // Reconnecting to a netcore that is gone, and nothing waits for it any
        // more (the last server closed): stop trying, so the process can exit.
        else if (this.relinking && this.state === 'connecting' && this.relisten.length === 0) this.teardown();
      });
    }
  }

  // Queues one command (a plain object for netcore.v1.Command) with an
  // optional payload frame; sends are strictly in call order.
  // The commands of one turn of the event loop leave as one CommandBatch
  // (at setImmediate, after the nextTick that sends a socket's writes), so a
  // Credit shares its message with the writes its data produced: netcore
  // gets both or neither (PROTOCOL.md 13). Inside a batch only Write carries
  // a payload; any other command with one goes alone, after the batch.
  send(cmd, payload) {
    if (this.state === 'closed') return;
    if (this.resuming && !cmd.hello) {
      // Writes wait in their socket's log and credit in its count (both are
      // sent once resumed); the rest is said then.
      if (!cmd.write && !cmd.end && !cmd.credit) this.held.push([cmd, payload]);
      return;
    }
    const env = encodeCommand(cmd);
    if ((payload !== undefined && !cmd.write) || cmd.hello || cmd.bye) {
      this.lastSent = Date.now();
      this.flushBatch();
      this.enqueue(payload === undefined ? [env] : [env, payload]);
      return;
    }
    this.sendPacked(env, Boolean(cmd.write), payload);
  }

  // A command already packed (protocol.js packWrite, packCredit) joins the
  // batch of this turn; a Write with its payload frame.
  sendPacked(env, isWrite, payload) {
    if (this.state === 'closed') return;
    // Resuming (PROTOCOL.md 16.1): a Write waits in its socket's log and a
    // Credit in its count, both sent once the session resumed.
    if (this.resuming) return;
    this.lastSent = Date.now();
    // At most 256 commands per batch, netcore's lowest --max-batch
    // (PROTOCOL.md 11), and never between a Write and its Credit: a Write
    // starts a new batch when this one has no room for both.
    if (this.batch.length >= (isWrite ? 255 : 256)) this.flushBatch();
    this.batch.push(env);
    if (payload !== undefined) this.batchFrames.push(payload);
    if (!this.batchScheduled) {
      this.batchScheduled = true;
      setImmediate(() => this.flushBatch());
    }
  }

  flushBatch() {
    this.batchScheduled = false;
    if (this.batch.length === 0 || this.state === 'closed') return;
    const cmds = this.batch;
    const frames = this.batchFrames;
    this.batch = [];
    this.batchFrames = [];
    let env = cmds[0];
    if (cmds.length > 1) {
      // Command{batch = 50: CommandBatch{repeated Command commands = 1}}, in
      // one allocation.
      let body = 0;
      for (const c of cmds) body += 1 + varintLength(c.length) + c.length;
      env = Buffer.allocUnsafe(2 + varintLength(body) + body);
      env[0] = 0x92;
      env[1] = 0x03;
      let at = putVarint(env, 2, body);
      for (const c of cmds) {
        env[at++] = 0x0a;
        at = putVarint(env, at, c.length);
        at += c.copy(env, at);
      }
    }
    this.enqueue([env, ...frames]);
  }

  enqueue(frames) {
    this.outq.push(frames);
    if (!this.pumping) this.pump();
  }

  // Leaves netcore now (nc_loop_leave): what is batched goes, then
  // Bye{handoff}; resolves once the Bye has left.
  leave(handoff) {
    if (this.state === 'closed') return Promise.resolve();
    if (links.get(this.endpoint) === this) links.delete(this.endpoint);
    this.send({ bye: { handoff: !!handoff } });
    this.state = 'closing-bye';
    return new Promise((resolve) => {
      const check = () => {
        if (this.state !== 'closed' && this.pumping) return setImmediate(check);
        if (this.state !== 'closed') this.finishClose(); // else pump() did, once the Bye left
        return resolve();
      };
      check();
    });
  }

  async pump() {
    const sock = this.sock;
    const outq = this.outq;
    this.pumping = true;
    try {
      while (outq.length > 0 && this.state !== 'closed' && sock === this.sock) {
        await sock.send(outq.shift());
      }
    } catch (err) {
      this.ioFailed(sock, err);
    }
    if (sock !== this.sock) return; // a new DEALER has its own pump
    this.pumping = false;
    if (this.state === 'closing-bye' && this.outq.length === 0) this.finishClose();
  }

  // Ref'd: one receive() pending at all times (it keeps the loop alive).
  async recvLoop(sock) {
    receiving.add(sock);
    try {
      while (this.refd && sock === this.sock && !sock.closed) {
        const frames = await sock.receive();
        if (sock !== this.sock) return;
        this.dispatch(frames);
      }
    } catch (err) {
      this.ioFailed(sock, err);
      return;
    } finally {
      receiving.delete(sock);
    }
    if (sock === this.sock && this.state !== 'closed' && !this.refd) this.schedulePoll(1);
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
      case 'stats':
        return this.onStats(body);
      case 'error':
        return this.onError(body);
      case 'shutdown':
        return this.onShutdown(body);
      case 'listening':
      case 'server_error':
      case 'server_closed':
      case 'connection':
      case 'adopted': {
        const id = toBig(body.server_id);
        const server = this.servers.get(id);
        if (server) {
          server._onEvent(kind, body, ev.seq, id);
          if (server._refd === false) server._applyRef();
        } else this.send({ destroy: { socket_id: body.socket_id } });
        return undefined;
      }
      default: {
        const sock = this.sockets.get(toBig(body.socket_id));
          if (!sock) return undefined;
          if (ev.ack) sock._onAck(ev.ack); // a lazy ack is applied before its event
          sock._onEvent(kind, body, payload, ev.seq);
          if (sock._refd === false) this.setRef(sock);
        return undefined;
      }
    }
  }

  onWelcome(w) {
    if (this.state !== 'connecting') return;
    clearTimeout(this.helloTimer);
    if (this.resuming) {
      this.resuming = false;
      clearTimeout(this.resumeTimer);
      const held = this.held;
      this.held = [];
      if (w.resumed && w.id_prefix === this.welcome.id_prefix) {
        this.onResumed(w, held);
        return;
      }
      // Another netcore, or a restart: the session ended with the old one.
      if (!this.endObjects(`netcore at ${this.endpoint} went away (the new one does not hold this session)`)) return;
    }
    this.welcome = w;
    this.counter = 0n;
    this.relinking = false;
    this.state = 'ready';
    const period = Math.max(10, Math.floor(w.lease_ms / 3));
    this.pingTimer = setInterval(() => this.tick(period), period);
    this.pingTimer.unref();
    const servers = this.relisten;
    this.relisten = [];
    for (const server of servers) server._relisten(this);
    const ops = this.pending;
    this.pending = [];
    for (const op of ops) op();
    if (this.holders.size === 0) this.scheduleIdle();
  }

  // Welcome{resumed}: the same session goes on with every object (the same
  // ids: the counter goes on); a socket it does not name is gone.
  onResumed(w, held) {
    this.welcome = w;
    this.relinking = false;
    this.state = 'ready';
    const period = Math.max(10, Math.floor(w.lease_ms / 3));
    this.pingTimer = setInterval(() => this.tick(period), period);
    this.pingTimer.unref();
    const writes = new Map();
    for (const r of w.resumed_sockets || []) writes.set(toBig(r.socket_id), toNum(r.writes));
    const err = ncError('ERR_NETCORE_GONE', { message: 'the socket did not survive the netcore takeover' });
    // Protocol 1.4: a Listen or Connect the old netcore never read (or a
    // connect it had not finished) goes again under its id.
    const again = (w.minor_version || 0) >= 4;
    const heldServers = new Set((w.resumed_servers || []).map(toBig));
    for (const [id, srv] of [...this.servers]) {
      if (again && srv._state === 'pending' && srv._id === id && !heldServers.has(id)) srv._listenAgain(this);
    }
    for (const [id, sock] of [...this.sockets]) {
      if (writes.has(id) && !again && sock._nc === 'pending') {
        // A netcore of 1.3 never says Connected again: the socket ends.
        this.send({ destroy: { socket_id: toLong(id) } });
        writes.delete(id);
      }
      if (writes.has(id)) sock._resumed(writes.get(id));
      else if (again && sock._connectAgain()) continue;
      else {
        this.sockets.delete(id);
        this.holders.delete(sock);
        sock._onLinkGone(err);
      }
    }
    // A ServerClose sent and not answered by ServerClosed may have been lost
    // with the old netcore, unread, or its answer may have been (PROTOCOL.md
    // 16.1): it goes again; the server takes the answer (Server
    // _onCloseError). One said while resuming is among the held ones.
    const heldCloses = new Set();
    for (const [cmd] of held) if (cmd.server_close) heldCloses.add(toBig(cmd.server_close.server_id));
    for (const [id, srv] of this.servers) {
      if (srv._closing.get(id) === this && !heldCloses.has(id)) this.send({ server_close: { server_id: toLong(id) } });
    }
    for (const [cmd, payload] of held) this.send(cmd, payload);
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
    if (code === 'ERR_NO_HELLO') {
      // netcore forgot us (our lease ran out while this process was blocked).
      this.fail('ERR_NETCORE_GONE', `netcore dropped this handler: ${e.message || 'lease expired'}`);
      return;
    }
    const sid = toBig(e.socket_id);
    const vid = toBig(e.server_id);
    const target = (sid && this.sockets.get(sid)) || (vid && this.servers.get(vid));
    if (target && !sid && target._closing.has(vid)) {
      // About a server id close() gave up: the answer to its ServerClose.
      if (target._onCloseError(code, vid)) {
        if (target._refd === false) target._applyRef();
        return;
      }
    }
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
    if (this.reconnect) return; // servers listen again on the next netcore (Server server_closed)
    for (const server of this.servers.values()) server._onShutdown();
  }

  // netcore is gone or was never there: every object errors and closes, and
  // the next object made for this endpoint starts a new link. With
  // reconnection, after a Welcome: relink() instead.
  fail(code, message) {
    if (this.state === 'closed') return;
    if (this.reconnect && this.welcome && this.state !== 'closing-bye' &&
        (code === 'ERR_NETCORE_GONE' || code === 'ERR_NETCORE_SHUTDOWN')) {
      if (this.resumable && code === 'ERR_NETCORE_GONE' && !this.shuttingDown &&
          this.welcome.session_token && this.welcome.session_token.length > 0) {
        this.holdSession(message);
        return;
      }
      this.relink(message);
      return;
    }
    this.teardown();
    const err = ncError(code, { message });
    const victims = [...this.holders];
    this.holders.clear();
    this.counted.clear();
    this.pending = [];
    this.statsAsked = [];
    for (const obj of victims) obj._onLinkGone(err);
  }

  // The new netcore refused us (EACCES, EPROTO): reconnecting cannot help.
  refused(code, message) {
    this.welcome = null;
    this.fail(code, message);
  }

  // The lost link's DEALER and timers go; the link waits, connecting, for the next one.
  dropLink() {
    clearTimeout(this.helloTimer);
    clearInterval(this.pingTimer);
    this.pingSentAt = 0;
    this.closeDealer();
    this.pumping = false;
    this.state = 'connecting';
    this.relinking = true;
  }

  // The link is lost, maybe to a takeover: every object waits as it is and a
  // new DEALER asks to resume the session (PROTOCOL.md 16.1); without a
  // Welcome{resumed} within RESUME_WAIT_MS, relink().
  holdSession(message) {
    this.dropLink();
    if (!this.resuming) {
      this.resuming = true;
      this.held = [];
      this.resumeTimer = setTimeout(() => {
        if (!this.resuming || this.state !== 'connecting') return;
        this.resuming = false;
        this.held = [];
        this.relink(`${message}; no netcore resumed this session within ${RESUME_WAIT_MS} ms`);
      }, RESUME_WAIT_MS);
    }
    this.openDealer();
  }

  // Link lost, reconnection on: sockets get 'error' ERR_NETCORE_GONE then
  // 'close'; servers that were listening wait for the next Welcome; a new
  // DEALER says Hello.
  relink(message) {
    this.dropLink();
    this.shuttingDown = false;
    if (!this.endObjects(message)) return;
    this.openDealer();
  }

  // What a lost link ends: sockets get 'error' ERR_NETCORE_GONE then
  // 'close'; listening servers wait to listen again. Returns false (after
  // teardown) when nothing waits for netcore any more.
  endObjects(message) {
    const err = ncError('ERR_NETCORE_GONE', { message });
    const servers = [...this.servers.values()];
    const sockets = [...this.sockets.values()];
    this.servers.clear();
    this.sockets.clear();
    for (const server of servers) {
      if (server._linkLost()) {
        this.relisten.push(server);
      } else {
        this.unhold(server);
        server._onLinkGone(err);
      }
    }
    for (const sock of sockets) {
      this.unhold(sock);
      sock._onLinkGone(err);
    }
    if (this.holders.size === 0 && this.relisten.length === 0) {
      this.teardown(); // nothing waits for netcore: the next object makes a new link
      return false;
    }
    return true;
  }

  // Clean close when nothing holds the link any more: Bye, then close once
  // the Bye has left.
  close() {
    if (this.state === 'closed') return;
    if (links.get(this.key) === this) links.delete(this.key);
    this.send({ bye: {} });
    this.state = 'closing-bye';
    if (!this.pumping) this.finishClose();
  }

  finishClose() {
    this.sock.linger = 1000;
    this.teardown();
  }

  teardown() {
    if (links.get(this.key) === this) links.delete(this.key);
    this.state = 'closed';
    clearTimeout(this.helloTimer);
    clearTimeout(this.resumeTimer);
    clearInterval(this.pingTimer);
    if (this.idleCheck) clearImmediate(this.idleCheck);
    this.outq = [];
    this.closeDealer();
  }
}

// Whether an object keeps the process alive: ref'd, or unref'd but waiting
// for what Node's libuv requests would wait for (a connect, a write, a bind).
function keepsAlive(obj) {
  return obj._keepsAlive ? obj._keepsAlive() : obj._refd !== false;
}

function varintLength(n) {
  let len = 1;
  while (n > 0x7f) {
    n >>>= 7;
    len += 1;
  }
  return len;
}

function putVarint(buf, at, n) {
  while (n > 0x7f) {
    buf[at++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[at++] = n;
  return at;
}

// Every link of this process leaves with Bye{handoff} (a rolling restart's
// graceful exit; PROTOCOL.md 13).
function leaveAll(handoff) {
  return Promise.all([...links.values()].map((l) => l.leave(handoff)));
}

module.exports = { Link, defaultEndpoint, linkOptions, leaveAll };
