/* test_policy.c: the policy engine (netcore/policy.c): parsing, its error
 * messages, and every decision, without a daemon. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy.h"

static const char *sample =
    "# a comment\n"
    "handler uid:1000 uid:1001   # two principals share this entry\n"
    "  listen tcp 127.0.0.1 0,8000-8099\n"
    "  listen tcp 0.0.0.0 8080\n"
    "  listen unix /run/app/\n"
    "  connect tcp 10.0.0.0/8 5432\n"
    "  connect tcp db.example.com 5432\n"
    "  connect tcp 2001:db8::/32 *\n"
    "  connect unix /run/postgresql\n"
    "  join web\n"
    "  max-sockets 100\n"
    "  max-servers 4\n"
    "  budget 1048576\n"
    "\n"
    "handler key:billing\n"
    "  listen tcp * 443\n"
    "  listen fd 3\n"
    "  join *\n"
    "handler key:ops\n"
    "  all\n"
    "  max-servers 2\n";

static ncd_policy *parse_ok(const char *text) {
  char err[512] = "";
  ncd_policy *p = ncd_policy_parse(text, "pol", err, sizeof err);
  if (!p) fail_msg("parse failed: %s", err);
  return p;
}

/* The text fails at exactly "pol:LINE: " + a message containing want. */
static void parse_fails(const char *text, int line, const char *want) {
  char err[512] = "", prefix[32];
  ncd_policy *p = ncd_policy_parse(text, "pol", err, sizeof err);
  if (p) {
    ncd_policy_free(p);
    fail_msg("'%s' parsed", text);
  }
  snprintf(prefix, sizeof prefix, "pol:%d: ", line);
  if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, want))
    fail_msg("'%s': got '%s', wanted '%s...%s'", text, err, prefix, want);
}

static struct sockaddr_storage ip(const char *text) {
  struct sockaddr_storage ss;
  memset(&ss, 0, sizeof ss);
  if (inet_pton(AF_INET, text, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else {
    assert_int_equal(inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)&ss)->sin6_addr), 1);
    ss.ss_family = AF_INET6;
  }
  return ss;
}

static int tcp(const ncd_policy_entry *e, int connect, const char *addr, uint32_t port) {
  struct sockaddr_storage ss = ip(addr);
  char why[600];
  return ncd_policy_tcp(e, connect, NULL, (struct sockaddr *)&ss, port, why, sizeof why);
}

static void test_policy_entries(void **state) {
  (void)state;
  ncd_policy *p = parse_ok(sample);
  assert_int_equal(ncd_policy_count(p), 3);
  const ncd_policy_entry *a = ncd_policy_entry_for(p, "uid:1000");
  assert_ptr_equal(a, ncd_policy_entry_for(p, "uid:1001"));
  assert_ptr_not_equal(a, ncd_policy_entry_for(p, "key:billing"));
  assert_true(ncd_policy_names_uid(p, 1000));
  assert_true(ncd_policy_names_uid(p, 1001));
  assert_false(ncd_policy_names_uid(p, 0));
  assert_false(ncd_policy_names_uid(NULL, 1000));
  /* Without an entry and without a default: nothing, and the message says so. */
  char why[600];
  const ncd_policy_entry *none = ncd_policy_entry_for(p, "uid:0");
  assert_int_equal(tcp(none, 0, "127.0.0.1", 0), NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_unix(none, 1, "/x", why, sizeof why), NCD_POLICY_DENY);
  assert_non_null(strstr(why, "pol: no entry for this handler and no 'handler default'"));
  assert_int_equal(ncd_policy_join(none, "web", why, sizeof why), NCD_POLICY_DENY);
  ncd_policy_free(p);

  /* A default entry serves everyone without an entry of their own. */
  p = parse_ok("handler default\n listen tcp 127.0.0.1 *\nhandler uid:7\n");
  assert_int_equal(tcp(ncd_policy_entry_for(p, "key:x"), 0, "127.0.0.1", 9), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(ncd_policy_entry_for(p, "uid:8"), 0, "127.0.0.1", 9), NCD_POLICY_ALLOW);
  /* uid:7 has its own, empty, entry: it may do nothing. */
  assert_int_equal(tcp(ncd_policy_entry_for(p, "uid:7"), 0, "127.0.0.1", 9), NCD_POLICY_DENY);
  assert_false(ncd_policy_names_uid(p, 8)); /* default lets no uid in */
  ncd_policy_free(p);
}

static void test_policy_no_file(void **state) {
  (void)state;
  char why[600];
  const ncd_policy_entry *own = ncd_policy_entry_for(NULL, "uid:0");
  const ncd_policy_entry *tcpp = ncd_policy_entry_for(NULL, "tcp:127.0.0.1");
  const ncd_policy_entry *key = ncd_policy_entry_for(NULL, "key:alice");
  assert_int_equal(tcp(own, 0, "0.0.0.0", 80), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(tcpp, 1, "10.1.2.3", 22), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_unix(own, 1, "relative", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_join(own, "g", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_listen_fd(own, 3, why, sizeof why), NCD_POLICY_ALLOW);
  /* CURVE keys: nothing without a policy. */
  assert_int_equal(ncd_policy_tcp(key, 0, NULL, NULL, 0, why, sizeof why), NCD_POLICY_DENY);
  assert_int_equal(tcp(key, 0, "127.0.0.1", 0), NCD_POLICY_DENY);
  assert_non_null(strstr(why, "no --policy"));
  assert_int_equal(ncd_policy_join(key, "g", why, sizeof why), NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_unix(key, 0, "/tmp/x", why, sizeof why), NCD_POLICY_DENY);
  uint32_t socks = 5, servers = 6;
  uint64_t budget = 7;
  ncd_policy_limits(key, &socks, &servers, &budget);
  assert_int_equal(socks, 5);
  assert_int_equal(servers, 6);
  assert_int_equal(budget, 7);
}

static void test_policy_listen_tcp(void **state) {
  (void)state;
  ncd_policy *p = parse_ok(sample);
  const ncd_policy_entry *e = ncd_policy_entry_for(p, "uid:1000");
  char why[600];
  assert_int_equal(tcp(e, 0, "127.0.0.1", 0), NCD_POLICY_ALLOW); /* port 0 listed */
  assert_int_equal(tcp(e, 0, "127.0.0.1", 8000), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 0, "127.0.0.1", 8099), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 0, "127.0.0.1", 8100), NCD_POLICY_DENY);
  assert_int_equal(tcp(e, 0, "127.0.0.2", 8000), NCD_POLICY_DENY);
  assert_int_equal(tcp(e, 0, "::ffff:127.0.0.1", 8000), NCD_POLICY_ALLOW); /* mapped = IPv4 */
  /* Wildcard binds: only the rule for 0.0.0.0 itself, not "::". */
  assert_int_equal(tcp(e, 0, "0.0.0.0", 8080), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 0, "0.0.0.0", 8081), NCD_POLICY_DENY);
  assert_int_equal(tcp(e, 0, "::", 8080), NCD_POLICY_DENY);
  struct sockaddr_storage any = ip("0.0.0.0");
  assert_int_equal(ncd_policy_tcp(e, 0, NULL, (struct sockaddr *)&any, 80, why, sizeof why),
                   NCD_POLICY_DENY);
  assert_non_null(strstr(why,
                         "pol:2 (handler uid:1000 uid:1001): no 'listen tcp' rule allows "
                         "0.0.0.0 (a wildcard address"));
  assert_non_null(strstr(why, "port 80"));
  /* A CIDR rule never covers the wildcard address inside it. */
  ncd_policy *q = parse_ok("handler default\n listen tcp 0.0.0.0/0 *\n listen tcp ::/0 *\n");
  const ncd_policy_entry *d = ncd_policy_entry_for(q, "uid:1");
  assert_int_equal(tcp(d, 0, "10.9.8.7", 1), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(d, 0, "0.0.0.0", 1), NCD_POLICY_DENY);
  assert_int_equal(tcp(d, 0, "::", 1), NCD_POLICY_DENY);
  assert_int_equal(tcp(d, 0, "::1", 1), NCD_POLICY_ALLOW);
  ncd_policy_free(q);
  /* "*" is everything, wildcards included. */
  const ncd_policy_entry *b = ncd_policy_entry_for(p, "key:billing");
  assert_int_equal(tcp(b, 0, "0.0.0.0", 443), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(b, 0, "::", 443), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(b, 0, "0.0.0.0", 444), NCD_POLICY_DENY);
  /* Listen rules are not connect rules. */
  assert_int_equal(tcp(b, 1, "127.0.0.1", 443), NCD_POLICY_DENY);
  ncd_policy_free(p);
}

static void test_policy_connect_tcp(void **state) {
  (void)state;
  ncd_policy *p = parse_ok(sample);
  const ncd_policy_entry *e = ncd_policy_entry_for(p, "uid:1000");
  char why[600];
  assert_int_equal(tcp(e, 1, "10.0.0.1", 5432), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 1, "10.255.255.255", 5432), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 1, "11.0.0.1", 5432), NCD_POLICY_DENY);
  assert_int_equal(tcp(e, 1, "10.0.0.1", 5433), NCD_POLICY_DENY);
  assert_int_equal(tcp(e, 1, "::ffff:10.1.1.1", 5432), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 1, "::ffff:11.1.1.1", 5432), NCD_POLICY_DENY);
  assert_int_equal(tcp(e, 1, "2001:db8:1::5", 1), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 1, "2001:db9::5", 1), NCD_POLICY_DENY);
  /* Connecting to 0.0.0.0 reaches this host: not inside 10/8. */
  assert_int_equal(tcp(e, 1, "0.0.0.0", 5432), NCD_POLICY_DENY);
  /* A name matches a name rule as given (case and a final dot aside)... */
  assert_int_equal(ncd_policy_tcp(e, 1, "DB.example.com.", NULL, 5432, why, sizeof why),
                   NCD_POLICY_ALLOW);
  /* ...and else must resolve to an allowed address. */
  assert_int_equal(ncd_policy_tcp(e, 1, "other.example", NULL, 5432, why, sizeof why),
                   NCD_POLICY_RESOLVE);
  struct sockaddr_storage in = ip("10.2.3.4"), out = ip("127.0.0.1");
  assert_int_equal(
      ncd_policy_tcp(e, 1, "other.example", (struct sockaddr *)&in, 5432, why, sizeof why),
      NCD_POLICY_ALLOW);
  assert_int_equal(
      ncd_policy_tcp(e, 1, "other.example", (struct sockaddr *)&out, 5432, why, sizeof why),
      NCD_POLICY_DENY);
  assert_non_null(strstr(why, "no 'connect tcp' rule allows other.example (127.0.0.1) port 5432"));
  /* The name rule is for 5432 only; 2001:db8::/32 (every port) may still match. */
  assert_int_equal(ncd_policy_tcp(e, 1, "db.example.com", NULL, 80, why, sizeof why),
                   NCD_POLICY_RESOLVE);
  /* The address of an allowed name is not allowed by the name rule. */
  ncd_policy *q = parse_ok("handler default\n connect tcp localhost 99\n");
  const ncd_policy_entry *d = ncd_policy_entry_for(q, "uid:1");
  assert_int_equal(tcp(d, 1, "127.0.0.1", 99), NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_tcp(d, 1, "localhost", NULL, 99, why, sizeof why), NCD_POLICY_ALLOW);
  /* No address rule could match: refused before any resolving. */
  assert_int_equal(ncd_policy_tcp(d, 1, "evil.example", NULL, 99, why, sizeof why),
                   NCD_POLICY_DENY);
  assert_non_null(strstr(why, "no 'connect tcp' rule allows evil.example port 99"));
  ncd_policy_free(q);
  ncd_policy_free(p);
}

static void test_policy_unix(void **state) {
  (void)state;
  ncd_policy *p = parse_ok(sample);
  const ncd_policy_entry *e = ncd_policy_entry_for(p, "uid:1000");
  char why[600];
  assert_int_equal(ncd_policy_unix(e, 0, "/run/app", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_unix(e, 0, "/run/app/x.sock", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_unix(e, 0, "/run/app/a/b.sock", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_unix(e, 0, "/run/application.sock", why, sizeof why),
                   NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_unix(e, 0, "/run/app/../secret", why, sizeof why), NCD_POLICY_DENY);
  assert_non_null(strstr(why, "not a canonical absolute path"));
  assert_int_equal(ncd_policy_unix(e, 0, "/run/app/./x", why, sizeof why), NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_unix(e, 0, "/run/app//x", why, sizeof why), NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_unix(e, 0, "/run/app/..", why, sizeof why), NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_unix(e, 0, "run/app/x", why, sizeof why), NCD_POLICY_DENY);
  /* Listen and connect rules are apart. */
  assert_int_equal(ncd_policy_unix(e, 1, "/run/app/x.sock", why, sizeof why), NCD_POLICY_DENY);
  assert_non_null(strstr(why, "no 'connect unix' rule allows /run/app/x.sock"));
  assert_int_equal(ncd_policy_unix(e, 1, "/run/postgresql/.s.PGSQL.5432", why, sizeof why),
                   NCD_POLICY_ALLOW);
  ncd_policy *q = parse_ok("handler default\n connect unix *\n listen unix /\n");
  const ncd_policy_entry *d = ncd_policy_entry_for(q, "uid:1");
  assert_int_equal(ncd_policy_unix(d, 1, "rel/../x", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_unix(d, 0, "/any/where", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_unix(d, 0, "/a/../b", why, sizeof why), NCD_POLICY_DENY);
  ncd_policy_free(q);
  ncd_policy_free(p);
}

static void test_policy_groups_fds_limits(void **state) {
  (void)state;
  ncd_policy *p = parse_ok(sample);
  const ncd_policy_entry *e = ncd_policy_entry_for(p, "uid:1000");
  const ncd_policy_entry *b = ncd_policy_entry_for(p, "key:billing");
  const ncd_policy_entry *o = ncd_policy_entry_for(p, "key:ops");
  char why[600];
  assert_int_equal(ncd_policy_join(e, "web", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_join(e, "web2", why, sizeof why), NCD_POLICY_DENY);
  assert_non_null(strstr(why, "no 'join' rule allows group 'web2'"));
  assert_int_equal(ncd_policy_join(b, "anything", why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_listen_fd(b, 3, why, sizeof why), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_listen_fd(b, 4, why, sizeof why), NCD_POLICY_DENY);
  assert_int_equal(ncd_policy_listen_fd(e, 3, why, sizeof why), NCD_POLICY_DENY);
  /* all: anything. */
  assert_int_equal(tcp(o, 0, "0.0.0.0", 1), NCD_POLICY_ALLOW);
  assert_int_equal(ncd_policy_unix(o, 1, "x/../y", why, sizeof why), NCD_POLICY_ALLOW);
  uint32_t socks = 0, servers = 1024;
  uint64_t budget = 64;
  ncd_policy_limits(e, &socks, &servers, &budget);
  assert_int_equal(socks, 100);
  assert_int_equal(servers, 4);
  assert_int_equal(budget, 1048576);
  socks = 9, servers = 1024, budget = 64;
  ncd_policy_limits(o, &socks, &servers, &budget);
  assert_int_equal(socks, 9); /* unset: the global value stays */
  assert_int_equal(servers, 2);
  assert_int_equal(budget, 64);
  ncd_policy_free(p);
}

static void test_policy_parse_errors(void **state) {
  (void)state;
  parse_fails("listen tcp * *\n", 1, "a rule before the first 'handler' line");
  parse_fails("# c\nhandler\n", 2, "'handler' needs one or more principals");
  parse_fails("handler uid:x\n", 1, "uid:N needs a number");
  parse_fails("handler key:\n", 1, "key:NAME needs a name");
  parse_fails("handler bob\n", 1, "a handler is named uid:N, key:NAME, tcp:ADDR or default");
  parse_fails("handler uid:1\nhandler key:a uid:1\n", 2, "already has an entry above");
  parse_fails("handler default\n frobnicate\n", 2, "unknown directive");
  parse_fails("handler default\n listen tcp 127.0.0.1\n", 2, "expected 'listen tcp ADDRESS PORTS'");
  parse_fails("handler default\n listen tcp 127.0.0.1 70000\n", 2, "each 0..65535");
  parse_fails("handler default\n listen tcp 127.0.0.1 9-8\n", 2, "from low to high");
  parse_fails("handler default\n listen tcp 127.0.0.1 8,,x\n", 2, "ports are");
  parse_fails("handler default\n\n connect tcp 10.0.0.1/8 1\n", 3, "bits set past its prefix");
  parse_fails("handler default\n connect tcp 10.0.0.0/33 1\n", 2, "an IPv4 prefix is 0..32");
  parse_fails("handler default\n connect tcp 10.0.0 1\n", 2, "not '*', an IP address");
  parse_fails("handler default\n connect tcp ::ffff:1.2.3.4 1\n", 2, "IPv4-mapped");
  parse_fails("handler default\n connect unix relative/path\n", 2, "an absolute path");
  parse_fails("handler default\n listen unix /a/../b\n", 2, "without '.', '..' or '//'");
  parse_fails("handler default\n connect fd 3\n", 2, "expected 'connect tcp|unix ...'");
  parse_fails("handler default\n listen fd x\n", 2, "'listen fd' takes a number or '*'");
  parse_fails("handler default\n join\n", 2, "'join' takes one group name");
  parse_fails("handler default\n max-sockets -1\n", 2, "a limit needs a number");
  parse_fails("handler default\n budget lots\n", 2, "budget needs a number of bytes");
  parse_fails("handler default\n all please\n", 2, "'all' takes nothing");
  /* Comments, blank lines, CRLF and a missing final newline are fine. */
  ncd_policy *p = parse_ok(
      "# x\r\n\r\nhandler tcp:127.0.0.1 # loopback\r\n listen tcp [::1] 1\r\n"
      " connect tcp [2001:db8::]/32 2");
  const ncd_policy_entry *e = ncd_policy_entry_for(p, "tcp:127.0.0.1");
  assert_int_equal(tcp(e, 0, "::1", 1), NCD_POLICY_ALLOW);
  assert_int_equal(tcp(e, 1, "2001:db8::9", 2), NCD_POLICY_ALLOW);
  ncd_policy_free(p);
}

static void test_policy_load_file(void **state) {
  (void)state;
  char err[600], path[] = "/tmp/nct-policy-XXXXXX";
  assert_null(ncd_policy_load("/nonexistent/policy", err, sizeof err));
  assert_non_null(strstr(err, "cannot open --policy file /nonexistent/policy"));
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  const char *text = "handler uid:5\n listen tcp * *\n  listen unix\n";
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  assert_null(ncd_policy_load(path, err, sizeof err));
  char want[64];
  snprintf(want, sizeof want, "%s:3: expected 'listen unix PATH'", path);
  assert_string_equal(err, want);
  unlink(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_policy_entries),      cmocka_unit_test(test_policy_no_file),
      cmocka_unit_test(test_policy_listen_tcp),   cmocka_unit_test(test_policy_connect_tcp),
      cmocka_unit_test(test_policy_unix),         cmocka_unit_test(test_policy_groups_fds_limits),
      cmocka_unit_test(test_policy_parse_errors), cmocka_unit_test(test_policy_load_file),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
