/* idmap.h: a hash map from 64-bit wire ids to pointers (sockets, servers),
 * shared by netcore and libnc.
 *
 * Open addressing with linear probing and backward-shift deletion (no
 * tombstones), so lookups on the hot path (every command and every event
 * names an id) stay short however many sockets come and go. The map does not
 * own the pointers. Id 0 is reserved (never stored). Not thread-safe; each
 * map belongs to one loop.
 */
#ifndef NC_IDMAP_H
#define NC_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ncc_idmap_s {
  uint64_t *keys; /* 0 = empty slot */
  void **vals;
  size_t cap;     /* power of two */
  size_t count;
} ncc_idmap_t;

#include "visibility.h"

NCC_HIDDEN void ncc_idmap_init(ncc_idmap_t *m);
NCC_HIDDEN void ncc_idmap_free(ncc_idmap_t *m);
/* Stores val for key (replacing any). Returns 0 or -ENOMEM (NC_ENOMEM, NCD_ENOMEM). */
NCC_HIDDEN int ncc_idmap_put(ncc_idmap_t *m, uint64_t key, void *val);
/* The value stored for key, or NULL. */
NCC_HIDDEN void *ncc_idmap_get(const ncc_idmap_t *m, uint64_t key);
/* Removes key if present. */
NCC_HIDDEN void ncc_idmap_del(ncc_idmap_t *m, uint64_t key);

#endif
