/* errors.h: error numbers inside the daemon and their Node names on the wire.
 *
 * Inside netcore an error is a negative int: libuv's UV_E* values (which are
 * -errno on Unix) or the project-wide numbers of common/include/nc_errors.h (NCD_ERR_*). Only
 * at the wire is it turned into a name and a message. Pure functions; any thread.
 */
#ifndef NCD_ERRORS_H
#define NCD_ERRORS_H

#include "nc_errors.h"

enum {
#define XX(name, code, msg) NCD_##name = (code),
  NC_ERRNO_MAP(XX)
#undef XX
};

/* The Node code name of err ("EADDRINUSE"; UV_EAI_NONAME is "ENOTFOUND").
 * Returns a static string; never NULL. */
const char *ncd_err_name(int err);

/* A default human-readable message for err. Returns a static string. */
const char *ncd_err_message(int err);

/* Why a command failed, for the Error event that answers it: the dispatcher
 * (commands.c) owns one on its stack per command and passes it down the call
 * chain; the callee that fails fills it. An empty message means
 * ncd_err_message(code). */
typedef struct ncd_err {
  int code;          /* 0, or the negative error */
  char message[512]; /* the detail; "" = the default message of code */
} ncd_err;

/* Sets e's code and formatted detail (e may be NULL: nobody asked why).
 * Returns code, so that a callee can `return ncd_err_set(e, NCD_EBADF, ...)`. */
int ncd_err_set(ncd_err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Checks the result of a libuv init/start call: 0 passes; an error is logged
 * ("cannot <what>: ENAME message", error level) and returned, so that
 * `if ((rc = ncd_uv_check(uv_timer_start(...), "start the lease timer")) != 0)`
 * handles it. Loop thread (it logs). */
int ncd_uv_check(int rc, const char *what);

#endif
