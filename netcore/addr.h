/* addr.h: socket addresses: validation, parsing and the text form on the wire.
 *
 * Pure functions over caller-owned buffers, callable from anywhere; unit tested
 * in tests/unit. Errors are negative numbers of errors.h.
 */
#ifndef NCD_ADDR_H
#define NCD_ADDR_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "protocol.h"

/* ncc_addr and NCC_FAMILY_* (the wire's Family) are common/protocol.h's. */

/* Checks a TCP port from the wire: 0..65535, and 0 only if allow_zero.
 * Returns 0 or NCD_ERR_SOCKET_BAD_PORT. */
int ncd_addr_check_port(int64_t port, int allow_zero);

/* Fills ss from an IP literal ("127.0.0.1", "::1", "fe80::1%lo") and port.
 * Returns 0, or NCD_EINVAL if host is not an IP literal (then it is a name). */
int ncd_addr_parse_ip(const char *host, uint32_t port, struct sockaddr_storage *ss, socklen_t *len);

/* Fills sun from a UNIX socket path. Returns 0, NCD_EINVAL for an empty path or
 * NCD_ENAMETOOLONG when it does not fit in sun_path with its terminating NUL. */
int ncd_addr_unix(const char *path, struct sockaddr_un *sun, socklen_t *len);

/* Converts a kernel address to its wire form. Returns 0 or NCD_EAFNOSUPPORT. */
int ncd_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, ncc_addr *out);

/* Whether a listening address accepts on every local address (0.0.0.0, ::),
 * so its connections' local addresses must be asked of each one. */
int ncd_addr_is_wildcard(const ncc_addr *a);

/* getsockname (peer = 0) or getpeername (peer = 1) of fd, in wire form. On
 * failure out is an unspecified address and the negative errno is returned. */
int ncd_addr_of_fd(int fd, int peer, ncc_addr *out);

#endif
