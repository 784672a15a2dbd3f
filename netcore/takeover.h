/* takeover.h: zero-downtime upgrade: `netcore --takeover` takes every
 * listener and accepted connection over from the running netcore
 * (PROTOCOL.md 14, README "Upgrading netcore").
 *
 * The running netcore listens on a private UNIX socket beside its first
 * ipc:// endpoint, <path>.takeover (mode 0600; a peer of another uid is
 * refused). A new netcore started with --takeover connects to it and says
 * Hello with its takeover protocol version and its --bind list; the running
 * one, inside that one loop callback (so it reads, accepts and writes
 * nothing meanwhile), ships its handlers, its listeners (fd by SCM_RIGHTS,
 * key, group, path) with their servers, and every accepted connection (fd,
 * id, seq, server, counters, credit, pause, timeout, half-open state, the
 * kept input its handler has not credited, and its queued writes' unsent
 * bytes), then waits for the answer. Ack: it tells a service manager
 * MAINPID=<the new one's pid> (sd_notify; the new one says READY=1 once it
 * serves), closes its ROUTER, releases its
 * endpoint files and lock, says Done and exits 0 (its copies of the fds close
 * without FIN: the new process holds them). A refusal, EOF or silence within
 * 5 s: it logs why and serves on as before. The new netcore holds what it got
 * as parked handlers (handoff.h) for --handoff-ms; a reconnecting handler of
 * the same principal adopts them when it listens again (Adopted + replay).
 * Outbound (Connect) and received-fd sockets are not shipped, except in the
 * session of a handler that said Hello.resumable: such a session is shipped
 * whole (token, prefix, last id, every connected socket with its write and
 * ack totals and pending timeout, its servers' pause) and resumes when the
 * handler presents its token (resume.h, PROTOCOL.md 16.1).
 * Loop thread only (the new side runs before the loop, in main).
 */
#ifndef NCD_TAKEOVER_H
#define NCD_TAKEOVER_H

#define NCD_TAKEOVER_VERSION 1

/* Running side: listens on the takeover socket once the endpoints are
 * claimed. No ipc:// endpoint: nothing to listen on (a debug line). Returns 0
 * or -1 after logging why. */
int ncd_takeover_listen(void);
/* Closes and removes the takeover socket (shutdown, or handed over). */
void ncd_takeover_stop(void);

/* New side (--takeover), before the endpoints are claimed: takes everything
 * over and waits until the old netcore has let go of the endpoints. Returns
 * 0, or -1 (exit 1) after logging why; the old netcore then serves on. */
int ncd_takeover_run(void);

/* Defined by main.c: the new netcore acknowledged; drop everything without
 * a FIN or an event, stop the ROUTER, release the endpoint files. The loop
 * then ends and netcore exits 0. */
void ncd_main_handed_over(void);

#endif
