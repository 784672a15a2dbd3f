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

typedef struct nc__idmap_s {
  uint64_t *keys; /* 0 = empty slot */
  void **vals;
  size_t cap;     /* power of two */
  size_t count;
} nc__idmap_t;

#define NC__HIDDEN_IDMAP __attribute__((visibility("hidden")))

NC__HIDDEN_IDMAP void nc__idmap_init(nc__idmap_t *m);
NC__HIDDEN_IDMAP void nc__idmap_free(nc__idmap_t *m);
/* Stores val for key (replacing any). Returns 0 or -ENOMEM (NC_ENOMEM, NCD_ENOMEM). */
NC__HIDDEN_IDMAP int nc__idmap_put(nc__idmap_t *m, uint64_t key, void *val);
/* The value stored for key, or NULL. */
NC__HIDDEN_IDMAP void *nc__idmap_get(const nc__idmap_t *m, uint64_t key);
/* Removes key if present. */
NC__HIDDEN_IDMAP void nc__idmap_del(nc__idmap_t *m, uint64_t key);

#endif
