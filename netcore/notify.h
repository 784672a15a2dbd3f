/* notify.h: readiness and stopping notices to a service manager (sd_notify).
 *
 * When systemd (or anything speaking its protocol) starts netcore with
 * NOTIFY_SOCKET set, netcore sends "READY=1" once every endpoint is bound and
 * every inherited listener taken, and "STOPPING=1" when a signal starts the
 * shutdown, so a Type=notify unit orders its dependents after real readiness.
 * Each notice is one datagram on a UNIX socket (a path, or an abstract name
 * starting with '@'); without NOTIFY_SOCKET nothing is sent. No libsystemd.
 * Loop thread only (or main before the loop starts).
 */
#ifndef NCD_NOTIFY_H
#define NCD_NOTIFY_H

/* Sends state (e.g. "READY=1\nMAINPID=123") to $NOTIFY_SOCKET. Returns 0 when
 * sent or when there is no NOTIFY_SOCKET, else a negative errno (logged once
 * as a warning: a manager that cannot be told is not a reason to stop). */
int ncd_notify(const char *state);

#endif
