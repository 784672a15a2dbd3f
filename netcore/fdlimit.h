/* fdlimit.h: the daemon's file descriptor budget.
 *
 * Running out of descriptors is a state to ride out, not an error (docs/ARCHITECTURE.md
 * rule 11). At start, ncd_fdlimit_init() raises RLIMIT_NOFILE's soft limit to
 * the hard limit (as Redis's adjustOpenFilesLimit does), keeps --fd-reserve
 * descriptors for ZeroMQ (its I/O thread, the handler links, new handlers'
 * connections) and netcore's own needs, and derives --max-connections from
 * what is left. libzmq 4.3.4 aborts when its ipc listener's accept() fails
 * with EMFILE, so TCP peers alone must never be able to use the reserve.
 * While running, the accept and fd-passing paths ask ncd_fdlimit_in_reserve()
 * about each new descriptor and report what they refused here; the reports
 * become at most one log line a second, with counts.
 *
 * Loop thread only (init before the loop runs).
 */
#ifndef NCD_FDLIMIT_H
#define NCD_FDLIMIT_H

#include "config.h"

/* Why a descriptor was given back at once. */
enum ncd_fd_refusal {
  NCD_FD_MAX_CONNECTIONS, /* --max-connections sockets are open */
  NCD_FD_RESERVE,         /* the new fd is inside the reserve (others ate into it) */
  NCD_FD_PASSED,          /* an fd received over a UNIX socket past either limit */
  NCD_FD_NREFUSALS
};

/* Raises the soft RLIMIT_NOFILE to the hard one, computes cfg->fd_reserve
 * (when 0: 64, or 1/32 of the limit when that is more) and
 * cfg->max_connections (0 or above limit - reserve: limit - reserve, with a
 * warning when it was given). Returns 0, or -1 after logging why the limit
 * leaves no room for connections. */
int ncd_fdlimit_init(ncd_config *cfg);

/* 1 if a descriptor just opened as `fd` leaves fewer than half the reserve
 * free. open() and accept() return the lowest free number, so fd >= limit -
 * reserve/2 proves that at most reserve/2 descriptors are left. */
int ncd_fdlimit_in_reserve(int fd);

/* A descriptor was closed at once for `why`. */
void ncd_fdlimit_refused(enum ncd_fd_refusal why);
/* accept() failed with err (a negative errno: EMFILE, ENFILE, ENOBUFS,
 * ENOMEM, or one that should not happen at all); accepting pauses for ms. */
void ncd_fdlimit_paused(int err, unsigned ms);
/* A connection was accepted again after a pause. */
void ncd_fdlimit_resumed(void);

#endif
