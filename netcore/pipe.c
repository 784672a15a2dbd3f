/* pipe.c: see pipe.h. */
#include "pipe.h"

#include <stdlib.h>

#include "errors.h"
#include "log.h"
#include "metrics.h"
#include "socket.h"

static uint64_t dest_queue(const ncd_socket *d) { return d->queued_bytes + d->pending_bytes; }

/* Unlinks p from both ends and frees it; src reads again under its credit. */
static void detach(ncd_pipe *p) {
  ncc_list_remove(&p->dest_link);
  p->src->pipe = NULL;
  free(p);
}

static void send_unpiped(ncd_socket *src, uint64_t dest_id, const ncd_socket *dest, int reason,
                         uint64_t bytes, int dest_ended) {
  ncc_event ev = {.kind = NCC_EV_UNPIPED,
                  .dest_socket_id = dest_id,
                  .unpipe_reason = reason,
                  .bytes = bytes,
                  .bytes_read = src->bytes_read,
                  .bytes_written = dest->bytes_written,
                  .flag = dest_ended};
  ncd_debug("socket %llu: pipe into %llu stopped (reason %d) after %llu bytes",
            (unsigned long long)src->id, (unsigned long long)dest_id, reason,
            (unsigned long long)bytes);
  ncd_socket_emit(src, &ev, NULL);
}

/* Stops p for reason: Unpiped on its source, which then reads under credit. */
static void stop(ncd_pipe *p, int reason, int dest_ended) {
  ncd_socket *src = p->src, *dest = p->dest;
  uint64_t bytes = p->bytes;
  detach(p);
  send_unpiped(src, dest->id, dest, reason, bytes, dest_ended);
  ncd_socket_update_reading(src);
}

static void end_dest(ncd_socket *src, ncd_socket *dest, int no_end, uint64_t bytes) {
  int ended = !no_end && !dest->ended && !dest->closing;
  if (ended) ncd_socket_end_piped(dest);
  send_unpiped(src, dest->id, dest, NCD_UNPIPE_SOURCE_ENDED, bytes, ended);
}

int ncd_pipe_start(ncd_socket *src, ncd_socket *dest, int no_end, uint32_t hwm) {
  ncd_pipe *p = calloc(1, sizeof *p);
  if (!p) return NCD_ENOMEM;
  if (src->pipe) stop(src->pipe, NCD_UNPIPE_REQUESTED, 0);
  /* Node: pipe() of an ended stream ends dest at once; but Data still on
   * its way to the handler goes to dest first (ncd_pipe_credited). */
  if (src->eof && src->credited >= src->data_sent) {
    free(p);
    end_dest(src, dest, no_end, 0);
    return 0;
  }
  if (dest->ended) { /* dest.write() would fail 'write after end': nothing to move */
    free(p);
    send_unpiped(src, dest->id, dest, NCD_UNPIPE_DEST_CLOSED, 0, 0);
    return 0;
  }
  p->src = src;
  p->dest = dest;
  p->no_end = no_end != 0;
  p->hwm = hwm ? hwm : NCD_PIPE_DEFAULT_HWM;
  p->start_at = src->data_sent;
  p->waiting = dest_queue(dest) > p->hwm;
  src->pipe = p;
  ncc_list_push(&dest->piped_in, &p->dest_link);
  ncd_debug("socket %llu: piped into %llu (mark %u%s)", (unsigned long long)src->id,
            (unsigned long long)dest->id, p->hwm, p->no_end ? ", no end" : "");
  ncd_socket_update_reading(src);
  return 0;
}

int ncd_pipe_restore(ncd_socket *src, ncd_socket *dest, int no_end, uint32_t hwm) {
  return src->pipe ? NCD_EINVAL : ncd_pipe_start(src, dest, no_end, hwm);
}

int ncd_pipe_unpipe(ncd_socket *src, ncd_err *err) {
  if (!src->pipe)
    return ncd_err_set(err, NCD_EINVAL, "socket %llu has no pipe inside netcore",
                       (unsigned long long)src->id);
  stop(src->pipe, NCD_UNPIPE_REQUESTED, 0);
  return 0;
}

size_t ncd_pipe_read_room(const ncd_socket *src, size_t max) {
  const ncd_pipe *p = src->pipe;
  if (p->waiting || src->credited < p->start_at) return 0;
  uint64_t q = dest_queue(p->dest), limit = ncd.cfg.max_write_queue;
  if (q >= limit) return 0;
  return limit - q < max ? (size_t)(limit - q) : max;
}

void ncd_pipe_moved(ncd_socket *src, size_t n) {
  ncd_pipe *p = src->pipe;
  p->bytes += n;
  ncd_metrics_piped(n);
  if (dest_queue(p->dest) > p->hwm) {
    p->waiting = 1;
    ncd_socket_update_reading(src);
  }
}

void ncd_pipe_source_ended(ncd_socket *src) {
  ncd_pipe *p = src->pipe;
  ncd_socket *dest = p->dest;
  int no_end = p->no_end;
  uint64_t bytes = p->bytes;
  detach(p);
  end_dest(src, dest, no_end, bytes);
}

void ncd_pipe_dest_ended(ncd_socket *d) {
  while (!ncc_list_empty(&d->piped_in))
    stop(ncc_container_of(d->piped_in.next, ncd_pipe, dest_link), NCD_UNPIPE_DEST_CLOSED, 0);
}

void ncd_pipe_socket_closing(ncd_socket *s) {
  if (s->pipe) stop(s->pipe, NCD_UNPIPE_SOURCE_CLOSED, 0);
  ncd_pipe_dest_ended(s);
}

void ncd_pipe_credited(ncd_socket *src) {
  if (src->pipe && src->eof && src->credited >= src->pipe->start_at) ncd_pipe_source_ended(src);
}

void ncd_pipe_drained(ncd_socket *d) {
  for (ncc_list *e = d->piped_in.next; e != &d->piped_in;) {
    ncd_pipe *p = ncc_container_of(e, ncd_pipe, dest_link);
    e = e->next; /* reading may fail the source, which unlinks p */
    if (!p->waiting) continue;
    p->waiting = 0;
    ncd_socket_update_reading(p->src);
    if (d->closing) return; /* a self-pipe failed to read: its pipes are gone */
  }
}
