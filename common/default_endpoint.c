/* default_endpoint.c: see default_endpoint.h. */
#include "default_endpoint.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int ncc_default_endpoint(const char *xdg, unsigned long euid, char *out, size_t cap) {
  int n;
  if (xdg != NULL && xdg[0] == '/') {
    size_t len = strlen(xdg);
    while (len > 0 && xdg[len - 1] == '/') len--;
    n = snprintf(out, cap, "ipc://%.*s/" NCC_ENDPOINT_DIR_NAME "/" NCC_ENDPOINT_SOCK_NAME,
                 (int)len, xdg);
  } else if (euid == 0) {
    n = snprintf(out, cap, "ipc:///run/" NCC_ENDPOINT_DIR_NAME "/" NCC_ENDPOINT_SOCK_NAME);
  } else {
    n = snprintf(out, cap, "ipc:///tmp/" NCC_ENDPOINT_DIR_NAME "-%lu/" NCC_ENDPOINT_SOCK_NAME,
                 euid);
  }
  if (n < 0 || (size_t)n >= cap) {
    if (cap > 0) out[0] = '\0';
    return -ENAMETOOLONG;
  }
  return 0;
}
