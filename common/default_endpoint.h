/* default_endpoint.h: the one rule for netcore's default ipc:// endpoint,
 * shared by the daemon and libnc (the Python and Node.js libraries spell the
 * same rule out in their own language; README "Endpoint" says it in words):
 *
 *   XDG_RUNTIME_DIR set to an absolute path  -> ipc://$XDG_RUNTIME_DIR/netcore/netcore.sock
 *   else effective uid 0 (root)              -> ipc:///run/netcore/netcore.sock
 *   else                                     -> ipc:///tmp/netcore-<uid>/netcore.sock
 *
 * Trailing slashes of XDG_RUNTIME_DIR are dropped. Pure: no environment or
 * process state is read here, the caller passes both in. Any thread.
 */
#ifndef NC_DEFAULT_ENDPOINT_H
#define NC_DEFAULT_ENDPOINT_H

#include <stddef.h>

#include "visibility.h"

/* The directory and file name under it, as the daemon creates them. */
#define NCC_ENDPOINT_DIR_NAME "netcore"
#define NCC_ENDPOINT_SOCK_NAME "netcore.sock"

/* Writes the default endpoint for a process whose XDG_RUNTIME_DIR is xdg
 * (NULL or not absolute = unset) and whose effective uid is euid into out
 * (cap bytes, NUL-terminated). Returns 0, or -ENAMETOOLONG when it does not
 * fit (out is then ""). */
NCC_HIDDEN int ncc_default_endpoint(const char *xdg, unsigned long euid, char *out,
                                          size_t cap);

#endif
