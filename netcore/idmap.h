/* idmap.h: a hash map from 64-bit ids to pointers (sockets, servers).
 *
 * Open addressing with linear probing and backward-shift deletion, so lookups
 * on the hot path (every command names an id) touch one or two cache lines.
 * The map does not own the pointers. Id 0 is reserved (never stored).
 * Loop thread only.
 */
#ifndef NCD_IDMAP_H
#define NCD_IDMAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct ncd_idmap {
  uint64_t *keys; /* 0 = empty slot */
  void **values;
  size_t cap;     /* power of two */
  size_t count;
} ncd_idmap;

void ncd_idmap_init(ncd_idmap *m);
void ncd_idmap_free(ncd_idmap *m);
/* Returns the value stored for id, or NULL. */
void *ncd_idmap_get(const ncd_idmap *m, uint64_t id);
/* Stores value for id (replacing any). Returns 0 or NCD_ENOMEM. */
int ncd_idmap_put(ncd_idmap *m, uint64_t id, void *value);
/* Removes id if present. */
void ncd_idmap_del(ncd_idmap *m, uint64_t id);

#endif
