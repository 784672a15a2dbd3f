/* errtable.h: lookups over the error table of nc_errors.h (names, numbers,
 * default messages), for netcore and libnc alike.
 *
 * Owns nothing but a static table built from NC_ERRNO_MAP; pure functions,
 * callable from any thread.
 */
#ifndef NCC_ERRTABLE_H
#define NCC_ERRTABLE_H

#include "nc_errors.h"
#include "visibility.h"

/* Every number of the table as NCC_<name> (NCC_EPROTO, NCC_ERR_PAYLOAD), for
 * common code; netcore has the same as NCD_<name>, libnc as NC_<name>. */
enum {
#define XX(name, code, msg) NCC_##name = (code),
  NC_ERRNO_MAP(XX)
#undef XX
};

/* The Node code name of err ("EADDRINUSE"), or NULL if the table lacks it. */
NCC_HIDDEN const char *ncc_err_name(int err);
/* The default message of err ("address already in use"), or NULL. */
NCC_HIDDEN const char *ncc_err_message(int err);
/* The number of a code name, or 0 if name is NULL or not in the table. */
NCC_HIDDEN int ncc_err_from_name(const char *name);

#endif
