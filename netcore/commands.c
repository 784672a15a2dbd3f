/* commands.c: see commands.h. */
#include "commands.h"

#include <stdio.h>

#include "daemon.h"
#include "errors.h"
#include "handler.h"
#include "log.h"
#include "pipe.h"
#include "router.h"
#include "server.h"
#include "socket.h"
#include "wire.h"

/* Sends Error{err} about cmd to its sender: err's detail if the callee gave
 * one, else the default message of the code. */
static void reject(const void *rid, size_t rid_len, ncd_handler *h, const ncc_cmd *cmd,
                   const ncd_err *err) {
  ncc_event ev = {.kind = NCC_EV_ERROR,
                  .code = ncd_err_name(err->code),
                  .message = err->message[0] ? err->message : ncd_err_message(err->code),
                  .ref = cmd->ref,
                  .command = cmd->name};
  if (cmd->kind == NCC_CMD_LISTEN || cmd->kind == NCC_CMD_SERVER_PAUSE ||
      cmd->kind == NCC_CMD_SERVER_CLOSE || cmd->kind == NCC_CMD_SERVER_SET_MAX)
    ev.server_id = cmd->id;
  else
    ev.socket_id = cmd->id;
  ncd_debug("rejected %s from %s: %s %s", cmd->name, h ? h->name : "unknown", ev.code, ev.message);
  if (h && h->over_budget) return; /* PROTOCOL.md 10: over its budget, errors go unsent */
  if (h) ncd_router_send(h, &ev, NULL);
  else ncd_router_send_rid(rid, rid_len, &ev);
}

/* Carries out a command from a known handler. Returns 0 or an error to reject
 * with, its detail in err. */
static int run(ncd_handler *h, const ncc_cmd *cmd, zmq_msg_t *payload, ncd_err *err) {
  ncd_socket *s;
  ncd_server *srv;
  int rc;
  ncd_metrics_command(h, cmd->kind, cmd->name, payload ? zmq_msg_size(payload) : 0);
  switch (cmd->kind) {
  case NCC_CMD_BYE:
    if (cmd->handoff) ncd_handler_lost(h, "said Bye{handoff}");
    else ncd_handler_gone(h, "said Bye");
    return 0;
  case NCC_CMD_PING: {
    if (h->over_budget) return 0; /* it is not reading: answers wait for nothing */
    ncc_event ev = {.kind = NCC_EV_PONG, .nonce = cmd->nonce};
    ncd_router_send(h, &ev, NULL);
    return 0;
  }
  case NCC_CMD_STATS:
    return h->over_budget ? 0 : ncd_metrics_send_stats(h);
  case NCC_CMD_LISTEN:
    if (ncd.shutting_down) return NCD_ERR_NETCORE_SHUTDOWN;
    if ((rc = ncd_handler_claim_id(h, cmd->id, err)) != 0) return rc;
    return ncd_server_listen(h, cmd);
  case NCC_CMD_CONNECT:
    if (ncd.shutting_down) return NCD_ERR_NETCORE_SHUTDOWN;
    if ((rc = ncd_handler_claim_id(h, cmd->id, err)) != 0) return rc;
    return ncd_socket_connect(h, cmd);
  case NCC_CMD_SERVER_PAUSE:
  case NCC_CMD_SERVER_CLOSE:
  case NCC_CMD_SERVER_SET_MAX:
    if ((rc = ncd_handler_server(h, cmd->id, &srv, err)) != 0) return rc;
    if (cmd->kind == NCC_CMD_SERVER_CLOSE) return ncd_server_close(srv);
    if (cmd->kind == NCC_CMD_SERVER_PAUSE) ncd_server_pause(srv, cmd->msecs);
    else ncd_server_set_max_connections(srv, cmd->max_connections);
    return 0;
  default:
    break;
  }
  if ((rc = ncd_handler_socket(h, cmd->id, &s, err)) != 0) return rc;
  switch (cmd->kind) {
  case NCC_CMD_WRITE:
    ncd_socket_write(s, payload, cmd->fd_socket_id, cmd->ack_now);
    return 0;
  case NCC_CMD_END:
    ncd_socket_end(s, payload, cmd->ack_now);
    return 0;
  case NCC_CMD_DESTROY:
    ncd_socket_destroy(s, 1);
    return 0;
  case NCC_CMD_PAUSE:
    ncd_socket_pause(s);
    return 0;
  case NCC_CMD_RESUME:
    ncd_socket_resume(s);
    return 0;
  case NCC_CMD_CREDIT:
    ncd_socket_credit(s, cmd->bytes); /* may start a pipe waiting for it (pipe.h) */
    return 0;
  case NCC_CMD_PIPE: {
    ncd_socket *dest;
    /* Another handler's destination is as unknown (ARCHITECTURE.md rule 4). */
    if ((rc = ncd_handler_socket(h, cmd->dest_socket_id, &dest, err)) != 0) return rc;
    return ncd_pipe_start(s, dest, cmd->no_end, cmd->high_water_mark);
  }
  case NCC_CMD_UNPIPE:
    return ncd_pipe_unpipe(s, err);
  case NCC_CMD_SET_TIMEOUT:
    return ncd_socket_set_timeout(s, cmd->msecs);
  case NCC_CMD_SET_NO_DELAY:
    return ncd_socket_set_nodelay(s, cmd->enable);
  case NCC_CMD_SET_KEEP_ALIVE:
    return ncd_socket_set_keepalive(s, cmd->enable, cmd->initial_delay_ms);
  default:
    return NCD_ERR_UNKNOWN_COMMAND;
  }
}

/* Checks a command's payload frame against its kind (alone, End may have one). */
static int check_payload(const ncc_cmd *cmd, zmq_msg_t *payload, ncd_err *err) {
  if (payload && zmq_msg_size(payload) > ncd.cfg.max_frame)
    return ncd_err_set(err, NCD_EMSGSIZE, "frame of %zu bytes is over the limit of %u bytes",
                       zmq_msg_size(payload), ncd.cfg.max_frame);
  int rule = ncc_cmd_payload_rule(cmd->kind);
  if ((rule == NCC_PAYLOAD_NEVER && payload) || (rule == NCC_PAYLOAD_REQUIRED && !payload))
    return ncd_err_set(err, NCD_ERR_PAYLOAD,
                       payload ? "%s takes no payload frame" : "%s needs a payload frame",
                       cmd->name);
  return 0;
}

/* Carries out the commands of a CommandBatch in order, each as if alone; one
 * payload frame per Write. h is the sender, known (it said Hello). */
static void run_batch(const void *rid, size_t rid_len, ncd_handler *h, size_t count,
                      ncd_frames *rest) {
  for (size_t i = 0; i < count; i++) {
    ncc_cmd cmd;
    ncd_err err = {0};
    zmq_msg_t payload;
    int has_payload = 0, took_frame = 0;
    int rc = ncd_wire_batch_cmd(i, &cmd);
    if (rc == 0 && cmd.kind == NCC_CMD_WRITE) {
      took_frame = 1;
      has_payload = ncd_frames_next(rest, &payload) == 0;
    }
    if (h && ncd_handler_dead(h)) h = NULL; /* after a Bye in the same batch */
    if (rc == NCD_ERR_INVALID_ARG_VALUE) {
      ncd_err_set(&err, rc, "%s", ncd_wire_error()); /* a string that is not UTF-8 */
    } else if (rc != 0) {
      ncd_err_set(&err, rc, "command %zu of the batch holds no command this netcore knows", i);
    } else if (cmd.kind == NCC_CMD_HELLO || cmd.kind == NCC_CMD_BATCH) {
      rc = ncd_err_set(&err, NCD_ERR_INVALID_ARG_VALUE, "%s cannot be inside a batch", cmd.name);
    } else if (!h) {
      rc = ncd_err_set(&err, NCD_ERR_NO_HELLO, "%s after bye: the first command must be Hello",
                       cmd.name);
    } else if ((rc = check_payload(&cmd, has_payload ? &payload : NULL, &err)) == 0) {
      rc = run(h, &cmd, has_payload ? &payload : NULL, &err);
    }
    if (took_frame) zmq_msg_close(&payload);
    err.code = rc;
    if (rc != 0) reject(rid, rid_len, h, &cmd, &err);
  }
  int extra = ncd_frames_drain(rest);
  if (extra > 0 && h && !h->gone) {
    ncc_cmd batch = {.kind = NCC_CMD_BATCH, .name = "batch"};
    ncd_err err = {0};
    ncd_err_set(&err, NCD_ERR_PAYLOAD, "batch: %d payload frame%s more than its writes", extra,
                extra == 1 ? "" : "s");
    reject(rid, rid_len, h, &batch, &err);
  }
}

/* The bounds an envelope must keep before it is decoded at all (PROTOCOL.md
 * 10): known handlers up to --max-envelope, strangers only a small Hello;
 * then the wire walk that refuses nesting and oversized batches. */
static int check_envelope(const ncd_handler *h, zmq_msg_t *env, ncd_err *err) {
  size_t len = zmq_msg_size(env);
  /* A resume Hello lists the session's sockets (PROTOCOL.md 16.1): it may be
   * as large as any envelope. */
  if (!h && len > NCD_MAX_HELLO_ENVELOPE && !ncd_wire_is_resume_hello(zmq_msg_data(env), len))
    return ncd_err_set(err, NCD_EMSGSIZE,
                       "before Hello only a Hello of at most %d bytes is accepted, not %zu bytes",
                       NCD_MAX_HELLO_ENVELOPE, len);
  uint32_t limit = ncd.cfg.max_envelope < ncd.cfg.max_frame ? ncd.cfg.max_envelope : ncd.cfg.max_frame;
  if (len > limit)
    return ncd_err_set(err, NCD_EMSGSIZE, "envelope of %zu bytes is over the limit of %u bytes",
                       len, limit);
  int rc = ncd_wire_cmd_check(zmq_msg_data(env), len, ncd.cfg.max_batch);
  if (rc == NCD_EPROTO) return ncd_err_set(err, rc, "the envelope is not a netcore.v1.Command");
  if (rc != 0) return ncd_err_set(err, rc, "%s", ncd_wire_error()); /* nested or too many */
  return 0;
}

size_t ncd_commands_dispatch(const void *rid, size_t rid_len, zmq_msg_t *env, ncd_frames *rest) {
  ncc_cmd cmd = {.name = "unknown"};
  ncd_err err = {0};
  /* Who sent it is the connection (ZAP's User-Id), not the routing id. */
  const char *user_id = env ? zmq_msg_gets(env, "User-Id") : NULL;
  ncd_handler *h = ncd_handler_find(rid, rid_len, user_id);
  zmq_msg_t payload;
  int has_payload = 0, extra = 0, rc = 0;
  if (!env) {
    rc = ncd_err_set(&err, NCD_EPROTO, "a message needs an envelope frame");
  } else if ((rc = check_envelope(h, env, &err)) != 0) {
    /* refused unread */
  } else if ((rc = ncd_wire_cmd_unpack(zmq_msg_data(env), zmq_msg_size(env), &cmd)) != 0) {
    if (rc == NCD_ERR_INVALID_ARG_VALUE) ncd_err_set(&err, rc, "%s", ncd_wire_error());
    else
      ncd_err_set(&err, rc,
                  rc == NCD_EPROTO ? "the envelope is not a netcore.v1.Command"
                                   : "the envelope holds no command this netcore knows");
  } else if (cmd.kind == NCC_CMD_BATCH && h) {
    size_t n = cmd.batch_count;
    ncd_handler_touch(h);
    run_batch(rid, rid_len, h, n, rest);
    ncd_wire_cmd_release();
    return n;
  } else if (cmd.kind == NCC_CMD_BATCH) {
    rc = ncd_err_set(&err, NCD_ERR_NO_HELLO, "batch before hello: the first command must be Hello");
  } else {
    has_payload = ncd_frames_next(rest, &payload) == 0;
    extra = ncd_frames_drain(rest);
    if (extra > 0) {
      rc = ncd_err_set(&err, NCD_ERR_PAYLOAD, "%s: %d frames; at most an envelope and one payload",
                       cmd.name, 2 + extra);
    } else if (cmd.kind == NCC_CMD_HELLO) {
      if (has_payload) {
        rc = ncd_err_set(&err, NCD_ERR_PAYLOAD, "hello takes no payload frame");
      } else {
        rc = ncd_handler_hello(rid, rid_len, user_id, zmq_msg_get(env, ZMQ_SRCFD), &cmd, &err);
        h = NULL; /* a failed Hello is answered to the routing id */
      }
    } else if (!h) {
      rc = ncd_err_set(&err, NCD_ERR_NO_HELLO, "%s before hello: the first command must be Hello",
                       cmd.name);
    } else if ((rc = check_payload(&cmd, has_payload ? &payload : NULL, &err)) == 0) {
      ncd_handler_touch(h);
      rc = run(h, &cmd, has_payload ? &payload : NULL, &err);
    }
    zmq_msg_close(&payload);
  }
  if (h) ncd_handler_touch(h);
  err.code = rc;
  if (rc != 0) reject(rid, rid_len, h, &cmd, &err);
  ncd_wire_cmd_release();
  return 1;
}
