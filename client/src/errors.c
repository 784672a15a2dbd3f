/* errors.c: names and messages of libnc's error numbers, from the one table
 * in nc_errors.h. Pure functions; callable from any thread. */
#include <string.h>

#include "nc_int.h"

const char *nc_err_name(int err) {
  switch (err) {
#define XX(name, value, message) \
  case value:                    \
    return #name;
    NC_ERRNO_MAP(XX)
#undef XX
  default:
    return "UNKNOWN";
  }
}

const char *nc_strerror(int err) {
  switch (err) {
#define XX(name, value, message) \
  case value:                    \
    return message;
    NC_ERRNO_MAP(XX)
#undef XX
  default:
    return "unknown error";
  }
}

int nc_err_from_name(const char *name) {
  if (name == NULL) return NC_EIO;
#define XX(n, value, message) \
  if (strcmp(name, #n) == 0) return value;
  NC_ERRNO_MAP(XX)
#undef XX
  return NC_EIO;
}

int nc__err_code(const char *code) { return nc_err_from_name(code); }
