/* idmap.c: see idmap.h. */
#include "idmap.h"

#include <errno.h>
#include <stdlib.h>

static size_t slot(uint64_t key, size_t cap) {
  /* splitmix64 finaliser: ids are sequential, so spread them. */
  key ^= key >> 30;
  key *= 0xbf58476d1ce4e5b9ULL;
  key ^= key >> 27;
  key *= 0x94d049bb133111ebULL;
  key ^= key >> 31;
  return (size_t)key & (cap - 1);
}

void ncc_idmap_init(ncc_idmap_t *m) {
  m->keys = NULL;
  m->vals = NULL;
  m->cap = m->count = 0;
}

void ncc_idmap_free(ncc_idmap_t *m) {
  free(m->keys);
  free(m->vals);
  ncc_idmap_init(m);
}

static int grow(ncc_idmap_t *m) {
  size_t ncap = m->cap ? m->cap * 2 : 64;
  uint64_t *keys = calloc(ncap, sizeof(*keys));
  void **vals = calloc(ncap, sizeof(*vals));
  if (keys == NULL || vals == NULL) {
    free(keys);
    free(vals);
    return -ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++) {
    if (m->keys[i] == 0) continue;
    size_t j = slot(m->keys[i], ncap);
    while (keys[j] != 0) j = (j + 1) & (ncap - 1);
    keys[j] = m->keys[i];
    vals[j] = m->vals[i];
  }
  free(m->keys);
  free(m->vals);
  m->keys = keys;
  m->vals = vals;
  m->cap = ncap;
  return 0;
}

int ncc_idmap_put(ncc_idmap_t *m, uint64_t key, void *val) {
  int rv;
  if ((m->count + 1) * 2 > m->cap && (rv = grow(m)) != 0) return rv;
  size_t i = slot(key, m->cap);
  while (m->keys[i] != 0 && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
  if (m->keys[i] == 0) m->count++;
  m->keys[i] = key;
  m->vals[i] = val;
  return 0;
}

void *ncc_idmap_get(const ncc_idmap_t *m, uint64_t key) {
  if (m->cap == 0 || key == 0) return NULL;
  size_t i = slot(key, m->cap);
  while (m->keys[i] != 0) {
    if (m->keys[i] == key) return m->vals[i];
    i = (i + 1) & (m->cap - 1);
  }
  return NULL;
}

void ncc_idmap_del(ncc_idmap_t *m, uint64_t key) {
  if (m->cap == 0 || key == 0) return;
  size_t mask = m->cap - 1, i = slot(key, m->cap);
  while (m->keys[i] != key) {
    if (m->keys[i] == 0) return;
    i = (i + 1) & mask;
  }
  /* Backward shift: move later entries of the run into the hole when their
   * home slot does not lie (cyclically) between the hole and them. */
  size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (m->keys[j] == 0) break;
    size_t home = slot(m->keys[j], m->cap);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->keys[i] = m->keys[j];
      m->vals[i] = m->vals[j];
      i = j;
    }
  }
  m->keys[i] = 0;
  m->vals[i] = NULL;
  m->count--;
}
