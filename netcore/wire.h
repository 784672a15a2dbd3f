/* wire.h: the daemon's side of the protocol glue (common/protocol.h holds the
 * messages and their pack/unpack; this module knows no protobuf-c name).
 *
 * It owns the loop thread's command arena: a command unpacked here stays
 * valid (strings point into the arena) until ncd_wire_cmd_release() or the
 * next unpack. It checks envelopes against the daemon's batch limit, and packs
 * events straight into a ZeroMQ frame charged to a budget tally or into an
 * EventBatch. Loop thread only (the arena is static).
 */
#ifndef NCD_WIRE_H
#define NCD_WIRE_H

#include <stdint.h>
#include <zmq.h>

#include "budget.h"
#include "msgbatch.h"
#include "protocol.h"

/* Walks an envelope's wire bytes without decoding them: refuses batches
 * nested more than one level (a batch inside a batch inside a batch:
 * ERR_INVALID_ARG_VALUE; one level is refused per entry when the batch runs)
 * and a batch of more than max_batch
 * commands (EMSGSIZE), each with a message ncd_wire_error() gives, and bytes
 * that are not protobuf (EPROTO). Must pass before ncd_wire_cmd_unpack, which
 * recurses. Returns 0 or one of those errors. */
int ncd_wire_cmd_check(const void *data, size_t len, size_t max_batch);

/* Whether the envelope is a Hello with a resume_token (PROTOCOL.md 16.1):
 * the one Hello that may be larger than NCD_MAX_HELLO_ENVELOPE, since it
 * lists the session's sockets. Looks at the wire bytes only. */
int ncd_wire_is_resume_hello(const void *data, size_t len);

/* Unpacks an envelope (ncc_cmd_unpack into the loop's arena). Returns 0,
 * NCD_EPROTO, NCD_ERR_UNKNOWN_COMMAND (cmd->ref is still filled) or
 * NCD_ERR_INVALID_ARG_VALUE (ncd_wire_error() says why): cmd is then filled,
 * for the Error, but must not be carried out. */
int ncd_wire_cmd_unpack(const void *data, size_t len, ncc_cmd *cmd);
/* Why the last unpack or batch command gave NCD_ERR_INVALID_ARG_VALUE (names
 * the field); a static buffer, valid until the next unpack. */
const char *ncd_wire_error(void);
/* The i-th command of the CommandBatch last unpacked, as ncd_wire_cmd_unpack
 * would give it alone. Valid until ncd_wire_cmd_release(). */
int ncd_wire_batch_cmd(size_t i, ncc_cmd *cmd);
/* Frees what the last unpack allocated; cmd's strings die here. */
void ncd_wire_cmd_release(void);

/* Packs ev into msg (initialised here, charged to tally; the caller sends or
 * closes it). Returns 0 or NCD_ENOMEM. */
int ncd_wire_event_pack(const ncc_event *ev, ncd_tally *tally, zmq_msg_t *msg);

/* Appends ev to an EventBatch being collected. Returns 0 or NCD_ENOMEM
 * (batch unchanged). */
int ncd_wire_batch_append(ncc_msgbatch_t *batch, const ncc_event *ev);

#endif
