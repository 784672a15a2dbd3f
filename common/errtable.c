/* errtable.c: see errtable.h. */
#include "errtable.h"

#include <stddef.h>
#include <string.h>

typedef struct err_entry {
  const char *name;
  int code;
  const char *message;
} err_entry;

static const err_entry table[] = {
#define XX(name, code, message) {#name, (code), (message)},
    NC_ERRNO_MAP(XX)
#undef XX
};

#define NENTRIES (sizeof table / sizeof table[0])

static const err_entry *by_code(int err) {
  for (size_t i = 0; i < NENTRIES; i++)
    if (table[i].code == err) return &table[i];
  return NULL;
}

const char *ncc_err_name(int err) {
  const err_entry *e = by_code(err);
  return e ? e->name : NULL;
}

const char *ncc_err_message(int err) {
  const err_entry *e = by_code(err);
  return e ? e->message : NULL;
}

int ncc_err_from_name(const char *name) {
  if (name == NULL) return 0;
  for (size_t i = 0; i < NENTRIES; i++)
    if (strcmp(name, table[i].name) == 0) return table[i].code;
  return 0;
}
