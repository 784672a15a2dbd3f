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

/* A detail for the next command error, shown instead of the default message.
 * Set by a module just before it returns an error; read and cleared by the
 * command dispatcher. Loop thread only (one static buffer). */
void ncd_set_errmsg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *ncd_take_errmsg(void);

#endif
