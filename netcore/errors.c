/* errors.c: see errors.h. */
#include "errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <uv.h>

#include "errtable.h"
#include "log.h"

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

int ncd_err_set(ncd_err *e, int code, const char *fmt, ...) {
  if (!e) return code;
  va_list ap;
  va_start(ap, fmt);
  e->code = code;
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  return code;
}

int ncd_uv_check(int rc, const char *what) {
  if (rc != 0) ncd_error("cannot %s: %s: %s", what, ncd_err_name(rc), ncd_err_message(rc));
  return rc;
}
