/* fuzz_event_decode.c: libFuzzer harness of libnc's event decoder.
 *
 * Every input is an envelope as netcore would send it. It goes through what
 * loop.c does with one: nc__wire_unpack into an nc__event_t (arena reset
 * first), and for an EventBatch nc__wire_batch_event for each entry and one
 * past the end (which must fail). Every string and address handed out is
 * read to its end. Inputs nested deeper than the cap are skipped
 * (fuzz_common.h): libnc's protobuf-c recursion has no bound either.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "nc_int.h"

static nc__arena_t arena; /* one per loop in libnc; here one per process */
static volatile size_t sink;

static void touch(const char *s) {
  if (s) sink += strlen(s);
}

static void touch_addr(const nc_address_t *a) {
  if (memchr(a->address, '\0', sizeof a->address) == NULL) abort(); /* always terminated */
  sink += strlen(a->address) + (size_t)a->port + (size_t)a->family;
}

static void check_event(int rc, const nc__event_t *ev) {
  /* code, message and command are never NULL: callers print them. */
  if (!ev->code || !ev->message || !ev->command) abort();
  touch(ev->code);
  touch(ev->message);
  touch(ev->command);
  if (rc != 0) {
    if (rc != NC_EPROTO) abort();
    return;
  }
  if (ev->type > NC__EV_BATCH) abort();
  touch(ev->instance_id);
  touch(ev->server_version);
  touch_addr(&ev->local);
  touch_addr(&ev->remote);
  sink += (size_t)ev->seq + ev->socket_id + ev->bytes + ev->count + ev->ack_bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  if (!ncf_nesting_allowed(data, len)) return -1;
  nc__event_t ev;
  int rc = nc__wire_unpack(data, len, &ev, &arena);
  check_event(rc, &ev);
  if (rc == 0 && ev.type == NC__EV_BATCH) {
    uint32_t n = ev.count;
    for (uint32_t i = 0; i < n; i++) {
      nc__event_t sub;
      int src = nc__wire_batch_event(&arena, i, &sub);
      check_event(src, &sub);
      if (src == 0 && sub.type == NC__EV_BATCH) abort(); /* nested batches are not handed out */
    }
    nc__event_t past;
    if (nc__wire_batch_event(&arena, n, &past) == 0) abort();
  }
  nc__arena_reset(&arena);
  return 0;
}
