/* fuzz_event_decode.c: libFuzzer harness of libnc's event decoder.
 *
 * Every input is an envelope as netcore would send it. It goes through what
 * loop.c does with one: ncc_event_unpack (common/protocol.h) into an
 * ncc_event (arena reset first), and for an EventBatch ncc_event_batch_entry
 * for each entry and one past the end (which must fail). Every string and
 * address handed out is read to its end. With a cap, inputs the wire walk
 * refuses for nesting are skipped (fuzz_common.h).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "nc_int.h"

static _Alignas(16) unsigned char block[NC__ARENA_BLOCK];
static ncc_arena arena = {block, sizeof block, 0, NULL, NULL}; /* one per loop in libnc */
static volatile size_t sink;

static void touch(const char *s) {
  if (s) sink += strlen(s);
}

static void touch_addr(const ncc_addr *a) {
  if (a == NULL) return;
  if (memchr(a->address, '\0', sizeof a->address) == NULL) abort(); /* always terminated */
  sink += strlen(a->address) + (size_t)a->port + (size_t)a->family;
}

static void check_event(int rc, const ncc_event *ev) {
  /* code, message, command and reason are never NULL: callers print them. */
  if (!ev->code || !ev->message || !ev->command || !ev->reason) abort();
  touch(ev->reason);
  touch(ev->code);
  touch(ev->message);
  touch(ev->command);
  if (rc != 0) {
    if (rc != NC_EPROTO) abort();
    return;
  }
  if (ev->kind > NCC_EV_BATCH) abort();
  if ((ev->kind == NCC_EV_WELCOME) != (ev->welcome != NULL)) abort();
  if ((ev->kind == NCC_EV_STATS) != (ev->stats != NULL)) abort();
  if (ev->welcome) {
    touch(ev->welcome->instance_id);
    touch(ev->welcome->server_version);
  }
  if (ev->stats) {
    touch(ev->stats->instance_id);
    for (size_t f = 0; f < ev->stats->nfamilies; f++) {
      const ncc_stats_family *fam = &ev->stats->families[f];
      touch(fam->name), touch(fam->help), touch(fam->type);
      for (size_t i = 0; i < fam->nsamples; i++) {
        touch(fam->samples[i].name);
        for (size_t k = 0; k < fam->samples[i].nlabels; k++)
          touch(fam->samples[i].labels[k].name), touch(fam->samples[i].labels[k].value);
      }
    }
  }
  touch_addr(ev->local);
  touch_addr(ev->remote);
  sink += (size_t)ev->seq + ev->socket_id + ev->bytes + ev->count + ev->ack_bytes;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len) {
  if (!ncf_nesting_allowed(data, len)) return -1;
  ncc_event ev;
  int rc = ncc_event_unpack(&arena, data, len, &ev);
  check_event(rc, &ev);
  if (rc == 0 && ev.kind == NCC_EV_BATCH) {
    uint32_t n = ev.count;
    for (uint32_t i = 0; i < n; i++) {
      ncc_event sub;
      int src = ncc_event_batch_entry(&arena, i, &sub);
      check_event(src, &sub);
      if (src == 0 && sub.kind == NCC_EV_BATCH) abort(); /* nested batches are not handed out */
    }
    ncc_event past;
    if (ncc_event_batch_entry(&arena, n, &past) == 0) abort();
  }
  ncc_arena_reset(&arena);
  return 0;
}
