/* policy.h: what each handler may do (--policy FILE; docs/POLICY.md).
 *
 * A pure module: it parses a policy file into entries, one per handler
 * identity (the principal auth.h gives a connection: "uid:N", "key:NAME",
 * "tcp:ADDR", or "default" for every principal without an entry of its own),
 * and answers questions about one entry: may it listen on this address and
 * port, connect there, use this UNIX path, adopt this inherited fd, join this
 * group; which limits does it have. It knows nothing of the daemon: the hooks
 * in server.c, socket.c and handler.c ask, and turn a denial into EACCES.
 * Everything is callable from any thread; a policy is immutable once parsed
 * and owned by whoever parsed it (ncd_policy_free; the daemon swaps in a new
 * one on SIGHUP after re-pointing every handler at its new entry). Entries returned by
 * ncd_policy_entry_for live as long as their policy (the built-in ones for
 * "no policy file" forever).
 */
#ifndef NCD_POLICY_H
#define NCD_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

typedef struct ncd_policy ncd_policy;
typedef struct ncd_policy_entry ncd_policy_entry;

/* Answers of the decisions below. */
enum {
  NCD_POLICY_DENY = 0,
  NCD_POLICY_ALLOW = 1,
  NCD_POLICY_RESOLVE = 2 /* a host name no name rule allows: decide per resolved address */
};

/* Parses the text of a policy file; file names it in messages. Returns a new
 * policy, or NULL with "FILE:LINE: why" in err. */
ncd_policy *ncd_policy_parse(const char *text, const char *file, char *err, size_t cap);
/* Reads and parses the file at path (at most 1 MiB). NULL with why in err. */
ncd_policy *ncd_policy_load(const char *path, char *err, size_t cap);
void ncd_policy_free(ncd_policy *p);

/* The entry that governs principal under p: its own, else "default", else
 * one that allows nothing. Without a policy file (p NULL): CURVE principals
 * ("key:...") may do nothing, every other principal anything netcore can
 * (PROTOCOL.md 2.2 says why). Never NULL. */
const ncd_policy_entry *ncd_policy_entry_for(const ncd_policy *p, const char *principal);
/* Whether p has an entry for "uid:N": such uids are let in over ipc. */
int ncd_policy_names_uid(const ncd_policy *p, unsigned long uid);
/* How many entries p has (for the start-up log line). */
size_t ncd_policy_count(const ncd_policy *p);

/* The entry's limits override the global ones where it sets them. */
void ncd_policy_limits(const ncd_policy_entry *e, uint32_t *max_sockets, uint32_t *max_servers,
                       uint64_t *budget);

/* Decisions. On NCD_POLICY_DENY, why holds a sentence that names the entry
 * (file:line and principal) and what was asked, for the EACCES message.
 *
 * TCP: connect is 0 for Listen, 1 for Connect. name is the host as the
 * handler gave it when that is a name (NULL for an IP literal); sa the
 * address (NULL while a name is not resolved yet), its port ignored: port is
 * the port asked for (0 = OS-assigned, for Listen). A name is allowed by a
 * name rule that matches it as given, or else by an address rule matching
 * each address it resolves to: with sa NULL the answer is then RESOLVE (or
 * DENY when no rule of that kind could match the port). A wildcard address
 * (0.0.0.0, ::) matches only rules for "*" or for that very address. */
int ncd_policy_tcp(const ncd_policy_entry *e, int connect, const char *name,
                   const struct sockaddr *sa, uint32_t port, char *why, size_t cap);
/* A UNIX socket path. Only canonical absolute paths (no "." or ".."
 * components, no "//") can match a path rule. */
int ncd_policy_unix(const ncd_policy_entry *e, int connect, const char *path, char *why,
                    size_t cap);
/* Listen on an inherited listening fd. */
int ncd_policy_listen_fd(const ncd_policy_entry *e, int fd, char *why, size_t cap);
/* A Listen with a (non-empty) group: creating or joining a shared listener. */
int ncd_policy_join(const ncd_policy_entry *e, const char *group, char *why, size_t cap);

#endif
