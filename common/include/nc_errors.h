/* nc_errors.h: the one table of error names shared by libnc, netcore and the
 * Python and Node.js libraries (which read this file).
 *
 * Every failure in netcore travels on the wire as a Node-style code name
 * ("EADDRINUSE") plus a message; libnc turns the name back into a negative
 * number (NC_EADDRINUSE) so C code can compare it. The X-macro below is the
 * only place names, numbers and default messages are written, the same way
 * libuv's UV_ERRNO_MAP makes uv_err_name() and uv_strerror(); the lookups
 * over it are common/errtable.h.
 *
 * It lives in common/include/ (a directory of headers libnc installs, next to
 * nc.h as <nc/nc_errors.h>) and needs nothing else from common/.
 * Names that are POSIX errnos use -errno as their number; names that have no
 * errno (ENOTFOUND, ERR_...) use numbers below -4000, out of errno's range.
 * Safe to include from any thread; it declares no functions.
 */
#ifndef NC_ERRORS_H
#define NC_ERRORS_H

#include <errno.h>

#define NC_ERRNO_MAP(XX)                                                        \
  XX(EACCES, -EACCES, "permission denied")                                      \
  XX(EADDRINUSE, -EADDRINUSE, "address already in use")                         \
  XX(EADDRNOTAVAIL, -EADDRNOTAVAIL, "address not available")                    \
  XX(EAFNOSUPPORT, -EAFNOSUPPORT, "address family not supported")               \
  XX(EAGAIN, -EAGAIN, "resource temporarily unavailable")                       \
  XX(EALREADY, -EALREADY, "connection already in progress")                     \
  XX(EBADF, -EBADF, "bad file descriptor")                                      \
  XX(EBUSY, -EBUSY, "resource busy or locked")                                  \
  XX(ECANCELED, -ECANCELED, "operation canceled")                               \
  XX(ECONNABORTED, -ECONNABORTED, "software caused connection abort")           \
  XX(ECONNREFUSED, -ECONNREFUSED, "connection refused")                         \
  XX(ECONNRESET, -ECONNRESET, "connection reset by peer")                       \
  XX(EEXIST, -EEXIST, "file already exists")                                    \
  XX(EHOSTUNREACH, -EHOSTUNREACH, "host is unreachable")                        \
  XX(EINVAL, -EINVAL, "invalid argument")                                       \
  XX(EIO, -EIO, "i/o error")                                                    \
  XX(EISCONN, -EISCONN, "socket is already connected")                          \
  XX(EMFILE, -EMFILE, "too many open files")                                    \
  XX(EMSGSIZE, -EMSGSIZE, "message too long")                                   \
  XX(ENAMETOOLONG, -ENAMETOOLONG, "name too long")                              \
  XX(ENETUNREACH, -ENETUNREACH, "network is unreachable")                       \
  XX(ENFILE, -ENFILE, "file table overflow")                                    \
  XX(ENOBUFS, -ENOBUFS, "no buffer space available")                            \
  XX(ENOENT, -ENOENT, "no such file or directory")                              \
  XX(ENOMEM, -ENOMEM, "not enough memory")                                      \
  XX(ENOTCONN, -ENOTCONN, "socket is not connected")                            \
  XX(ENOTSOCK, -ENOTSOCK, "socket operation on non-socket")                     \
  XX(ENOTSUP, -ENOTSUP, "operation not supported on socket")                    \
  XX(EPERM, -EPERM, "operation not permitted")                                  \
  XX(EPIPE, -EPIPE, "broken pipe")                                              \
  XX(EPROTO, -EPROTO, "protocol error")                                         \
  XX(ETIMEDOUT, -ETIMEDOUT, "connection timed out")                             \
  XX(ENOTFOUND, -4001, "host name not found")                                   \
  XX(EAI_AGAIN, -4002, "temporary failure in name resolution")                  \
  XX(EAI_FAIL, -4003, "permanent failure in name resolution")                   \
  XX(ERR_SOCKET_BAD_PORT, -4010, "port should be >= 0 and < 65536")             \
  XX(ERR_INVALID_ARG_VALUE, -4011, "invalid argument value")                    \
  XX(ERR_INVALID_IP_ADDRESS, -4012, "invalid IP address")                       \
  XX(ERR_SERVER_ALREADY_LISTEN, -4013, "server is already listening")           \
  XX(ERR_SERVER_NOT_RUNNING, -4014, "server is not running")                    \
  XX(ERR_SOCKET_CLOSED, -4015, "socket is closed")                              \
  XX(ERR_NO_HELLO, -4020, "the first command must be Hello")                    \
  XX(ERR_UNSUPPORTED_VERSION, -4021, "unsupported protocol version")            \
  XX(ERR_UNKNOWN_COMMAND, -4022, "unknown command")                             \
  XX(ERR_PAYLOAD, -4023, "payload frame missing or not expected")               \
  XX(ERR_NETCORE_UNAVAILABLE, -4030, "netcore is not reachable")                \
  XX(ERR_NETCORE_GONE, -4031, "netcore went away")                              \
  XX(ERR_NETCORE_SHUTDOWN, -4032, "netcore is shutting down")                   \
  XX(ERR_HANDLER_GONE, -4033, "the owning handler went away")

#endif /* NC_ERRORS_H */
