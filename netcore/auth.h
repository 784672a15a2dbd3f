/* auth.h: who may be a handler.
 *
 * Every connection to netcore's ROUTER is decided by the ZAP handler here
 * (RFC 27, as CZMQ's zauth, but on netcore's own loop: a REP socket bound to
 * inproc://zeromq.zap.01 in netcore's context, polled by libuv and answered at
 * once). Each bind gets a ZAP domain naming its transport, so NULL-mechanism
 * connections go through ZAP too:
 *  - ipc: the peer's credentials (libzmq appends ":uid:gid:pid" to the peer
 *    address of a UNIX socket): netcore's own uid or gid, or an --allow-uid;
 *  - tcp with CURVE (--curve-secret-file): the peer's public key must be in
 *    the --curve-allow file;
 *  - tcp without CURVE (loopback, or --insecure-tcp): anyone who connects.
 * An accepted connection gets a User-Id unique to it, "N:PRINCIPAL", where
 * PRINCIPAL is "uid:N", "key:NAME" or "tcp:ADDR"; netcore reads it from every
 * envelope (zmq_msg_gets "User-Id") and binds handlers to it (handler.h). A
 * refusal is logged (warn, at most 10 lines a second) and the peer never gets
 * a Welcome.
 *
 * Also: the key files (common/keyfile.h), `netcore keygen`, and the start-up
 * check that no tcp bind is an unauthenticated network link. Loop thread only,
 * except ncd_auth_keygen (main, before anything starts).
 */
#ifndef NCD_AUTH_H
#define NCD_AUTH_H

/* `netcore keygen FILE`: writes a new key pair and prints its public key.
 * argv[0] is "keygen". Returns the exit status. */
int ncd_auth_keygen(int argc, char **argv);

/* After ncd_config_parse: loads the key pair and the allow file and checks the
 * binds (a non-loopback tcp bind without CURVE needs --insecure-tcp). Returns
 * 0, or an exit status (2) after printing why on stderr. */
int ncd_auth_init(void);

/* Binds the ZAP handler in ncd.zctx; must run before the ROUTER binds.
 * Returns 0 or -1 after logging why. */
int ncd_auth_start(void);

/* Sets the ZAP domain and the CURVE options the ROUTER needs before binding
 * endpoint (options apply per bind). Returns 0 or -1 after logging why. */
int ncd_auth_setup_bind(void *router, const char *endpoint);

/* How handlers on endpoint are authenticated, for the start-up log line. */
const char *ncd_auth_describe(const char *endpoint);

/* Closes the ZAP handler (after the ROUTER is closed). */
void ncd_auth_stop(void);

/* The principal part of a User-Id ("uid:0" of "7:uid:0"). */
const char *ncd_auth_principal(const char *user_id);

#endif
