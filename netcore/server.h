/* server.h: servers (one per Listen) and the listening sockets behind them.
 *
 * A listener is one real listening fd polled with uv_poll and accepted by hand,
 * so that server.pause() can leave clients in the kernel's backlog and
 * maxConnections can accept-and-close (libuv's uv_listen can do neither). A
 * listener has one member server, or several when handlers share it by group
 * name; accepted connections go round robin to members that can take one.
 * A closing server stops accepting at once and is freed, after ServerClosed,
 * when its last connection is gone. Loop thread only.
 */
#ifndef NCD_SERVER_H
#define NCD_SERVER_H

#include "daemon.h"
#include "wire.h"

/* Listen command; cmd->id was already claimed. Answers with Listening or
 * ServerError (then the id is dead). Returns 0, or NCD_ENOMEM. */
int ncd_server_listen(ncd_handler *h, const ncc_cmd *cmd);

/* server.close(): stop accepting now; ServerClosed once connections reach 0.
 * Returns 0 or NCD_ERR_SERVER_NOT_RUNNING if it was already closing. */
int ncd_server_close(ncd_server *srv);

/* server.pause(msecs); 0 means 1000. */
void ncd_server_pause(ncd_server *srv, uint32_t msecs);

void ncd_server_set_max_connections(ncd_server *srv, uint32_t max);

/* A socket accepted by srv has closed. */
void ncd_server_connection_closed(ncd_server *srv);
/* Listening again for a listening server whose handler never got it (a
 * resumed session, PROTOCOL.md 16.1): numbered from 1, as the first. */
void ncd_server_listening_again(ncd_server *srv);

/* Re-evaluates accepting on l: polls while a live member can take a
 * connection, else leaves clients in the backlog. */
void ncd_listener_update(ncd_listener *l);

/* Takeover (takeover.h): a listener shipped by a previous netcore around its
 * fd (NULL after closing fd), and a parked server of owner on it. */
ncd_listener *ncd_listener_restore(int fd, int is_unix, const char *key, const char *group,
                                   const char *unlink_path, const ncc_addr *address);
ncd_server *ncd_server_restore(ncd_handler *owner, uint64_t id, ncd_listener *l,
                               int allow_half_open, uint32_t max_connections);
/* Closes the listeners left without a member, updates the others. */
void ncd_listener_close_empty(void);

/* Closes every listener (shutdown): no more accepts anywhere. */
void ncd_server_close_all(void);

#endif
