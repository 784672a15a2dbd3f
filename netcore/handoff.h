/* handoff.h: connections outlive their handler (PROTOCOL.md 13).
 *
 * When a handler dies or leaves with Bye{handoff}, the connections its
 * servers accepted pass to a live member of the same listener group with the
 * same principal, or, when there is none, are parked: the handler stays gone
 * (nothing is sent to it, its sockets are not read, their queued writes keep
 * draining) and its servers stay members of their listeners, which stay open
 * but do not accept (clients wait in the backlog). A parked server is adopted
 * by the next handler of the same principal that listens on the same endpoint
 * in the same group, or, for a listener without a group, under the same
 * service name (Hello.service). After --handoff-ms whatever is still parked is
 * torn down as before (handler.c). Outbound connections (Connect) and
 * received fds are never adopted: an adopter cannot know what they were for.
 * Sockets linked by pipes inside netcore (pipe.h) move together, to one
 * adopter, and keep piping while parked.
 * The module owns no memory; it moves sockets (socket.c ncd_socket_move) and
 * closes emptied servers. Loop thread only.
 */
#ifndef NCD_HANDOFF_H
#define NCD_HANDOFF_H

#include "daemon.h"

/* h is gone (already marked): hands its connections to group members, parks
 * what has no adopter yet, destroys the sockets that cannot be adopted.
 * Returns how many servers were parked; 0 means nothing waits and the caller
 * tears down the rest as usual. */
int ncd_handoff_start(ncd_handler *h);

/* Whether h may listen on l although l is bound: same group (docs/ARCHITECTURE.md rule 5),
 * or a listener without a group whose members are all parked servers h may
 * adopt (same principal, same service name). */
int ncd_handoff_may_join(const ncd_handler *h, const ncd_listener *l, const char *group);

/* srv has just joined its listener: it adopts the connections of every
 * parked member h may adopt, and those servers are closed. */
void ncd_handoff_joined(ncd_server *srv);

#endif
