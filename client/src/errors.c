/* errors.c: names and messages of libnc's error numbers, the public face of
 * common/errtable.h. Pure functions; callable from any thread. */
#include "errtable.h"
#include "nc_int.h"

const char *nc_err_name(int err) {
  const char *name = ncc_err_name(err);
  return name ? name : "UNKNOWN";
}

const char *nc_strerror(int err) {
  const char *message = ncc_err_message(err);
  return message ? message : "unknown error";
}

int nc_err_from_name(const char *name) {
  int err = ncc_err_from_name(name);
  return err ? err : NC_EIO;
}

int nc__err_code(const char *code) { return nc_err_from_name(code); }
