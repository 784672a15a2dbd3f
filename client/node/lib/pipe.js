'use strict';
// pipe.js: src.pipe(dest) carried out inside netcore (PROTOCOL.md 17).
//
// Socket.pipe() always runs Node's own Readable.prototype.pipe, so every
// listener, 'pipe'/'unpipe' event, end and error rule is Node's. When both
// sockets are netcore sockets of one link, netcore speaks protocol 1.2, the
// offload is not switched off (NETCORE_PIPE_OFFLOAD=0) and nothing else
// reads src (no other 'data' listener, no 'readable' listener, no encoding,
// no other pipe destination), it also sends Pipe: netcore then moves the
// bytes itself and no Data comes, so Node's pipe sits idle. Data netcore
// had sent before it carried the Pipe out still arrives and goes through
// Node's pipe into dest; netcore starts moving only once that Data is
// credited, and the credit leaves after the writes it produced (see
// Socket._onData), so no byte overtakes another.
//
// Handing the stream back: a new 'data' or 'readable' listener,
// setEncoding(), unpipe() or a second pipe() send Unpipe; from netcore's
// Unpiped on, src's input comes as Data again and flows through whatever
// Node's pipe and the application have attached, without a lost or repeated
// byte. Unpiped also brings the byte counts (bytesRead, bytesWritten) and,
// when src's end ended dest, makes dest 'finish' as pipe()'s end() would.
//
// The Pipe leaves at the end of the turn (setImmediate), once every event
// already received has been dispatched: Data of src that came with it is
// written into dest first, and a src whose end came with it is not piped.
//
// State lives on the source socket (src._offload) while a pipe runs inside
// netcore: { dest, destId, end, state: 'arming' | 'active' | 'unpiping',
// adopted, hook }.
// Called from socket.js on the event loop only.

const { Readable } = require('stream');
const { toBig, toLong, toNum, UnpipeReason } = require('./protocol');

// Whether src.pipe(dest) can run inside netcore now. piped: Node's pipe of
// src into dest is already attached (a deferred check at 'connect').
function offloadApplies(src, dest, piped) {
  if (process.env.NETCORE_PIPE_OFFLOAD === '0') return false;
  const link = src._link;
  if (!link || dest._link !== link || !link.welcome || (link.welcome.minor_version || 0) < 2) return false;
  if (src._offload || src.destroyed || dest.destroyed || src._peerEnded || src.readableEnded) return false;
  if (dest.writableEnded || dest._endCmd !== 0 || dest._pipeEnding) return false;
  const rs = src._readableState;
  if (rs.objectMode || rs.encoding || rs.decoder) return false;
  if (src.listenerCount('readable') !== 0) return false;
  if (piped) {
    return rs.pipes.length === 1 && rs.pipes[0] === dest && src.listenerCount('data') === 1;
  }
  return rs.pipes.length === 0 && src.listenerCount('data') === 0;
}

// Both sockets known to netcore and connected.
const isOpen = (s) => s._id !== null && s._nc === 'open';

// The Pipe must not overtake writes of dest still queued in this library
// (netcore appends piped bytes behind what it has): flush them into the
// link's batch first; writes held back over the write limit keep the pipe
// in the handler.
function destFlushed(dest) {
  dest._pump();
  return dest._wq.length === 0 && !dest._held && dest.writableBuffer.length === 0;
}

// Called by Socket.pipe() before Node's pipe is attached: returns whether
// to offload now ('now'), once both sockets are connected ('later'), or not.
function plan(src, dest) {
  const Socket = src.constructor;
  if (!(dest instanceof Socket) || process.env.NETCORE_PIPE_OFFLOAD === '0') return null;
  if (isOpen(src) && isOpen(dest)) return offloadApplies(src, dest, false) ? 'now' : null;
  // Connecting (a proxy pipes into its upstream before it connects): decide
  // at 'connect', when netcore knows both, with the same rules.
  const pending = (s) => s._nc === 'pending' || s._nc === 'none';
  if ((pending(src) || isOpen(src)) && (pending(dest) || isOpen(dest))) return 'later';
  return null;
}

// Node's pipe of src into dest is attached: Pipe goes at the end of this
// turn if the rules still allow it then.
function start(src, dest, opts) {
  const end = !opts || opts.end !== false;
  const o = { dest, destId: dest._id, end, state: 'arming', adopted: false, hook: null };
  src._offload = o;
  watch(src, o);
  setImmediate(() => arm(src, o));
}

function arm(src, o) {
  if (src._offload !== o || o.state !== 'arming') return;
  const { dest } = o;
  const rs = src._readableState;
  const ok = isOpen(src) && isOpen(dest) && !src.destroyed && !dest.destroyed && !src._peerEnded &&
    !src.readableEnded && !dest.writableEnded && dest._endCmd === 0 && !dest._pipeEnding &&
    !rs.encoding && src.listenerCount('readable') === 0 && src.listenerCount('data') === 1 &&
    rs.pipes.length === 1 && rs.pipes[0] === dest && destFlushed(dest);
  if (!ok) {
    cancel(src, o);
    return;
  }
  o.state = 'active';
  src._link.send({
    pipe: {
      socket_id: toLong(src._id),
      dest_socket_id: toLong(dest._id),
      no_end: !o.end,
      high_water_mark: dest.writableHighWaterMark,
    },
  });
}

// A pipe whose Pipe never left: it stays Node's.
function cancel(src, o) {
  unwatch(src, o);
  if (src._offload === o) src._offload = null;
}

// After Node's pipe is attached for a later decision: offload once both
// sockets are connected, if the rules still allow it then.
function startWhenOpen(src, dest, opts) {
  const check = () => {
    if (!isOpen(src) || !isOpen(dest)) return;
    src.removeListener('connect', check);
    dest.removeListener('connect', check);
    if (offloadApplies(src, dest, true)) start(src, dest, opts);
  };
  if (!isOpen(src)) src.once('connect', check);
  if (!isOpen(dest) && dest !== src) dest.once('connect', check);
  check();
}

// A consumer of src appearing while netcore pipes: hand the stream back.
function watch(src, o) {
  o.hook = (event) => {
    if (event === 'data' || event === 'readable') handBack(src);
  };
  src.on('newListener', o.hook);
}

function unwatch(src, o) {
  if (o.hook) src.removeListener('newListener', o.hook);
  o.hook = null;
}

// Asks netcore to stop the pipe; src's input comes as Data from its
// Unpiped on (Socket._onEvent 'unpiped').
function handBack(src) {
  const o = src._offload;
  if (o && o.state === 'arming') cancel(src, o);
  if (!o || o.state !== 'active') return;
  o.state = 'unpiping';
  unwatch(src, o);
  if (src._id !== null && src._nc === 'open') src._link.send({ unpipe: { socket_id: toLong(src._id) } });
}

// Unpiped: the pipe stopped. Counts become exact again; an end of src that
// ended dest makes dest finish (Node's pipe would have called dest.end()).
function onUnpiped(src, ev) {
  const o = src._offload;
  src._offload = null;
  if (o) unwatch(src, o);
  const read = toNum(ev.bytes_read);
  if (read > src._bytesRead) {
    // Piped bytes took no read credit: nothing is owed for them.
    src._credited += read - src._bytesRead;
    src._bytesRead = read;
  }
  const dest = (o && o.dest) || src._link.sockets.get(toBig(ev.dest_socket_id));
  if (!dest) return;
  dest._pipedBytes += toNum(ev.bytes);
  dest._pipeEnding = false;
  if (ev.reason === UnpipeReason.UNPIPE_SOURCE_ENDED && ev.dest_ended) {
    endedByPipe(dest);
  } else if (dest._finalCb && dest._endCmd === 0 && !dest._pipeEnded) {
    // dest.end() waited for netcore's end, which did not happen: send ours.
    dest._wq.push({ buf: null, fd: undefined, end: true });
    dest._schedulePump();
  }
}

// netcore queued dest's FIN behind the piped bytes: dest is ended.
function endedByPipe(dest) {
  dest._pipeEnded = true;
  dest._endAcked = true;
  if (dest._finalCb) {
    const cb = dest._finalCb;
    dest._finalCb = null;
    cb();
  } else {
    // After src's 'end' (queued already), as Node's pipe calls end().
    process.nextTick(() => {
      if (!dest.writableEnded && !dest.destroyed) dest.end();
    });
  }
}

// src's peer ended while netcore pipes it: netcore ends dest (unless
// end: false), so dest.end() from Node's pipe must not send an End.
function onSourceEnded(src) {
  const o = src._offload;
  if (o && o.state === 'arming') cancel(src, o);
  else if (o && o.state === 'active' && o.end && o.dest) o.dest._pipeEnding = true;
}

// Adopted with pipe_dest_socket_id (PROTOCOL.md 13 and 17): the pipe runs
// on in netcore; once both sockets are known here Node's pipe is attached,
// so src reports it (readableState.pipes) and unpipe() works.
function adopt(src, ev) {
  const destId = toBig(ev.pipe_dest_socket_id);
  if (destId === 0n) return;
  const o = { dest: null, destId, end: !ev.pipe_no_end, state: 'active', adopted: true, hook: null };
  src._offload = o;
  const link = src._link;
  const dest = link.sockets.get(destId);
  if (dest) attachAdopted(src, dest);
  else link.pipeWaiters.set(destId, src);
}

// A socket was adopted: a source adopted before it may wait for it.
function adoptedSocket(link, sock) {
  const src = link.pipeWaiters.get(sock._id);
  if (!src) return;
  link.pipeWaiters.delete(sock._id);
  if (src._offload && src._offload.adopted && src._offload.destId === sock._id) attachAdopted(src, sock);
}

function attachAdopted(src, dest) {
  const o = src._offload;
  o.dest = dest;
  Readable.prototype.pipe.call(src, dest, { end: o.end });
  watch(src, o);
}

// pipe(dest) again on an adopted source whose pipe into dest netcore runs
// already: nothing to do (the adopter's handler pipes as the first did).
function alreadyPiped(src, dest) {
  const o = src._offload;
  return Boolean(o && o.adopted && o.dest === dest && o.state === 'active');
}

module.exports = { plan, start, startWhenOpen, handBack, onUnpiped, onSourceEnded, adopt, adoptedSocket, alreadyPiped };
