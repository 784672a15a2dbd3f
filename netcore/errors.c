/* errors.c: see errors.h. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <uv.h>

#include "errtable.h"

static int canonical(int err) {
  switch (err) {
  case UV_EAI_NONAME:
  case UV_EAI_NODATA:
  case UV_EAI_FAMILY:
  case UV_EAI_SERVICE:
    return NCD_ENOTFOUND;
  case UV_EAI_AGAIN:
    return NCD_EAI_AGAIN;
  case UV_EAI_FAIL:
    return NCD_EAI_FAIL;
  default:
    return err;
  }
}

const char *ncd_err_name(int err) {
  const char *name = ncc_err_name(canonical(err));
  return name ? name : uv_err_name(err);
}

const char *ncd_err_message(int err) {
  const char *message = ncc_err_message(canonical(err));
  return message ? message : uv_strerror(err);
}

/* The detail of the next command error (daemon.h); loop thread only. */
static char errmsg[512];

void ncd_set_errmsg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(errmsg, sizeof errmsg, fmt, ap);
  va_end(ap);
}

const char *ncd_take_errmsg(void) {
  static char taken[sizeof errmsg];
  snprintf(taken, sizeof taken, "%s", errmsg);
  errmsg[0] = '\0';
  return taken;
}
