/* resume.h: a handler's session goes on after `netcore --takeover`
 * (PROTOCOL.md 16.1).
 *
 * A takeover ships every session whose Hello said `resumable` (takeover.h):
 * it waits here as a parked handler of the previous netcore, holding its
 * session token, id prefix, servers and every socket. A Hello with
 * resume_token equal to that token, from the same principal, takes the
 * session over whole: Welcome{resumed} with the same id prefix and token,
 * the sockets it names go on with their ids and seqs (ncd_socket_resume_session),
 * accepted ones it did not name are announced by Connection, other ones end,
 * and its servers accept again. Protocol 1.4: what the handler sent that the
 * old netcore never read is made good: each listed socket's options are set
 * to the handler's view where they differ, a Listen or Connect whose answer
 * the handler awaits is answered again (the object is here) or its id may
 * be used once more (it is not). Loop thread only.
 */
#ifndef NCD_RESUME_H
#define NCD_RESUME_H

#include "daemon.h"
#include "errors.h"
#include "wire.h"

/* Hello with a resume_token from connection user_id (routing id rid, libzmq
 * fd conn_fd). Returns 1 when the session resumed (Welcome sent), 0 when no
 * session of this principal has that token (the caller makes a new one), or
 * a negative error with its detail in err (a malformed protocol 1.4 field:
 * nothing changed, the session stays parked). */
int ncd_resume_hello(const void *rid, size_t rid_len, const char *user_id, int conn_fd,
                     const ncc_cmd *cmd, ncd_err *err);

#endif
