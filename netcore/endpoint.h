/* endpoint.h: netcore's own ipc:// endpoints as files on disk: the default
 * endpoint's private directory, one netcore per path, no file left behind.
 *
 * ncd_endpoint_claim() runs for every ipc:// endpoint before ZeroMQ binds it.
 * It takes a lock file beside the socket (<path>.lock, flock, holding
 * netcore's pid), so of two netcores started at once on one path exactly one
 * goes on and the other exits with EADDRINUSE; libzmq would otherwise unlink
 * the first one's socket and bind over it. With the lock held, an existing
 * socket file that accepts a connection belongs to someone else (refused) and
 * one that refuses it is stale (removed). The default endpoint's directory
 * (default_endpoint.h) is made mode 0700, 0750 with --group-access, and is
 * refused when it is not netcore's own, others may write to it, or whoever
 * owns its parent could swap it. ncd_endpoint_bind() binds with the socket
 * file's mode (0600, 0660 with --group-access) set from the first moment.
 * ncd_endpoint_release() removes the socket and lock files this process made.
 *
 * A claim owns its lock fd until release. Main thread only: before the loop
 * runs (claim, bind: the umask is process-wide) and after it ended (release).
 */
#ifndef NCD_ENDPOINT_H
#define NCD_ENDPOINT_H

#include "config.h"

/* Claims every ipc:// endpoint of cfg (others need nothing). Returns 0, or -1
 * after logging a line that starts with the Node code (EADDRINUSE, EACCES,
 * EEXIST, ...) and says what to do; claims made so far stay for release. */
int ncd_endpoint_claim(const ncd_config *cfg);

/* zmq_bind(zsock, ep); for a claimed ipc:// endpoint with the socket file's
 * mode set and its identity recorded, so release removes only this file.
 * Returns 0, or -1 after logging why. */
int ncd_endpoint_bind(void *zsock, const char *ep);

/* Removes the socket files bound by ncd_endpoint_bind that are still the
 * same files, then every lock file, and closes the lock fds. Call after the
 * ZeroMQ socket is closed; safe to call when nothing was claimed. */
void ncd_endpoint_release(void);

#endif
