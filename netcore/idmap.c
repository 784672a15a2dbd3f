/* idmap.c: see idmap.h. */
#include "idmap.h"

#include <stdlib.h>

#include "errors.h"

static size_t slot_of(uint64_t id, size_t cap) {
  id ^= id >> 33;
  id *= 0xff51afd7ed558ccdULL;
  id ^= id >> 33;
  return (size_t)id & (cap - 1);
}

void ncd_idmap_init(ncd_idmap *m) {
  m->keys = NULL;
  m->values = NULL;
  m->cap = 0;
  m->count = 0;
}

void ncd_idmap_free(ncd_idmap *m) {
  free(m->keys);
  free(m->values);
  ncd_idmap_init(m);
}

void *ncd_idmap_get(const ncd_idmap *m, uint64_t id) {
  if (m->cap == 0 || id == 0) return NULL;
  for (size_t i = slot_of(id, m->cap);; i = (i + 1) & (m->cap - 1)) {
    if (m->keys[i] == id) return m->values[i];
    if (m->keys[i] == 0) return NULL;
  }
}

static void insert(uint64_t *keys, void **values, size_t cap, uint64_t id, void *value) {
  size_t i = slot_of(id, cap);
  while (keys[i] != 0 && keys[i] != id) i = (i + 1) & (cap - 1);
  keys[i] = id;
  values[i] = value;
}

static int grow(ncd_idmap *m) {
  size_t cap = m->cap ? m->cap * 2 : 64;
  uint64_t *keys = calloc(cap, sizeof *keys);
  void **values = calloc(cap, sizeof *values);
  if (!keys || !values) {
    free(keys);
    free(values);
    return NCD_ENOMEM;
  }
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i]) insert(keys, values, cap, m->keys[i], m->values[i]);
  free(m->keys);
  free(m->values);
  m->keys = keys;
  m->values = values;
  m->cap = cap;
  return 0;
}

int ncd_idmap_put(ncd_idmap *m, uint64_t id, void *value) {
  if ((m->count + 1) * 4 > m->cap * 3) {
    int rc = grow(m);
    if (rc) return rc;
  }
  size_t before = m->count;
  if (ncd_idmap_get(m, id) == NULL) m->count = before + 1;
  insert(m->keys, m->values, m->cap, id, value);
  return 0;
}

void ncd_idmap_del(ncd_idmap *m, uint64_t id) {
  if (m->cap == 0 || id == 0) return;
  size_t mask = m->cap - 1, i = slot_of(id, m->cap);
  while (m->keys[i] != id) {
    if (m->keys[i] == 0) return;
    i = (i + 1) & mask;
  }
  m->count--;
  /* Backward-shift: pull later entries of the probe run into the hole. */
  for (size_t j = (i + 1) & mask; m->keys[j] != 0; j = (j + 1) & mask) {
    size_t home = slot_of(m->keys[j], m->cap);
    if (((j - home) & mask) >= ((j - i) & mask)) {
      m->keys[i] = m->keys[j];
      m->values[i] = m->values[j];
      i = j;
    }
  }
  m->keys[i] = 0;
  m->values[i] = NULL;
}
