/* test_fdpass.c: file descriptors over UNIX sockets (Node's write(data, fd)
 * and 'fd' event). Outbound: a handler names one of its netcore sockets and
 * the peer receives a working duplicate with SCM_RIGHTS. Inbound: an fd that
 * a peer sends becomes a new netcore socket, announced by Fd before its Data. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* Reads exactly n bytes with recvmsg, collecting at most one passed fd. */
static size_t recv_with_fd(int fd, void *buf, size_t n, int *passed) {
  size_t got = 0;
  *passed = -1;
  uint64_t deadline = nct_now_ms() + NCT_WAIT;
  while (got < n && nct_now_ms() < deadline) {
    struct iovec iov = {(uint8_t *)buf + got, n - got};
    union {
      struct cmsghdr h;
      char space[CMSG_SPACE(sizeof(int) * 4)];
    } ctl;
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof ctl};
    ssize_t k = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (k < 0 && errno == EAGAIN) {
      struct timespec ts = {0, 5 * 1000 * 1000};
      nanosleep(&ts, NULL);
      continue;
    }
    if (k <= 0) break;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
        size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        int fds[4];
        memcpy(fds, CMSG_DATA(c), nfd * sizeof(int));
        for (size_t i = 0; i < nfd; i++) {
          if (*passed < 0)
            *passed = fds[i];
          else
            close(fds[i]); /* more than one: counted as a failure by the caller */
        }
      }
    got += (size_t)k;
  }
  return got;
}

static void send_with_fd(int sock, const void *data, size_t n, int fd) {
  struct iovec iov = {(void *)data, n};
  union {
    struct cmsghdr h;
    char space[CMSG_SPACE(sizeof(int))];
  } ctl;
  memset(&ctl, 0, sizeof ctl);
  struct msghdr msg = {
      .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &ctl, .msg_controllen = sizeof ctl};
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  if (sendmsg(sock, &msg, MSG_NOSIGNAL) != (ssize_t)n)
    nct_fail("sendmsg with fd: %s", strerror(errno));
}

/* The handler's two sockets: S1 over UNIX to our peer u, S2 over TCP to p2. */
typedef struct pair {
  uint64_t s1, s2;
  int u, p2;
  int ulfd, tlfd;
} pair;

static void make_pair(nct_env *e, nct_client *h, pair *p) {
  char path[256];
  nct_daemon_path(&e->d, "fdpeer.sock", path, sizeof path);
  unlink(path); /* left by an earlier pair of the same test */
  p->ulfd = nct_unix_listen(path);
  assert_true(p->ulfd >= 0);
  p->s1 = nct_new_id(h);
  nct_cmd_connect_path(h, p->s1, path);
  p->u = nct_accept(p->ulfd, NCT_WAIT);
  assert_true(p->u >= 0);
  nct_expect_drop(h, CONNECTED, p->s1);

  uint16_t port = 0;
  p->tlfd = nct_tcp_listen("127.0.0.1", &port);
  p->s2 = nct_new_id(h);
  nct_cmd_connect_tcp(h, p->s2, "127.0.0.1", port, 0);
  p->p2 = nct_accept(p->tlfd, NCT_WAIT);
  assert_true(p->p2 >= 0);
  nct_expect_drop(h, CONNECTED, p->s2);
}

static void close_pair(nct_client *h, pair *p) {
  nct_close_both(h, p->s1, p->u);
  nct_close_both(h, p->s2, p->p2);
  close(p->ulfd);
  close(p->tlfd);
}

static void test_fdpass_send_fd_with_data(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "sender");
  pair p;
  make_pair(e, h, &p);

  nct_cmd_write_fd(h, p.s1, p.s2, "fd!", 3);
  char buf[3];
  int passed;
  size_t n = recv_with_fd(p.u, buf, 3, &passed);
  if (n != 3 || memcmp(buf, "fd!", 3) != 0) nct_fail("peer got %zu bytes, expected \"fd!\"", n);
  if (passed < 0) nct_fail("the data arrived without an fd (no SCM_RIGHTS)");
  nct_wait_acks(h, p.s1, 1, 3);

  /* The fd is a duplicate of S2's socket: same addresses, and writing on it
   * reaches S2's peer. */
  assert_int_equal(nct_local_port(passed), nct_remote_port(p.p2));
  assert_int_equal(nct_remote_port(passed), nct_local_port(p.p2));
  nct_peer_write(passed, "via-fd", 6);
  nct_peer_expect(p.p2, "via-fd", 6);
  close(passed);
  /* S2 stays open in netcore. */
  nct_cmd_write(h, p.s2, "still", 5);
  nct_peer_expect(p.p2, "still", 5);
  nct_wait_acks(h, p.s2, 1, 5);
  close_pair(h, &p);
  nct_env_finish(e);
}

static void test_fdpass_receive_fd(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "receiver");
  char path[256];
  nct_daemon_path(&e->d, "fdsrv.sock", path, sizeof path);
  uint64_t srv = nct_new_id(h);
  nct_cmd_listen_path(h, srv, path);
  nct_expect_drop(h, LISTENING, srv);
  int u = nct_unix_connect(path);
  nct_event *ev = nct_expect_connection(h, srv);
  uint64_t s = ev->ev->connection->socket_id;
  nct_event_free(ev);

  /* x: a TCP connection to our listener; y: its other end. */
  uint16_t lport = 0;
  int lfd = nct_tcp_listen("127.0.0.1", &lport);
  int x = nct_tcp_connect("127.0.0.1", lport);
  int y = nct_accept(lfd, NCT_WAIT);
  uint16_t xport = nct_local_port(x);
  send_with_fd(u, "hello", 5, x);
  close(x); /* netcore holds the only copy now */

  ev = nct_expect(h, FD, s); /* before the Data it came with */
  Netcore__V1__Fd *fd = ev->ev->fd;
  uint64_t n = fd->new_socket_id;
  assert_true(n != 0 && n != s);
  assert_int_equal(n >> 32, 0); /* netcore-made ids have prefix 0 */
  assert_int_equal(fd->local->family, FAM(IPV4));
  assert_int_equal(fd->local->port, xport);
  assert_int_equal(fd->remote->family, FAM(IPV4));
  assert_string_equal(fd->remote->address, "127.0.0.1");
  assert_int_equal(fd->remote->port, lport);
  nct_event_free(ev);
  nct_expect_data(h, s, "hello", 5);

  /* The new socket is the handler's: both directions work. */
  nct_cmd_write(h, n, "to-new", 6);
  nct_peer_expect(y, "to-new", 6);
  nct_peer_write(y, "from-y", 6);
  nct_expect_data(h, n, "from-y", 6);
  nct_close_both(h, n, y);
  nct_close_both(h, s, u);
  close(lfd);
  nct_cmd_server_close(h, srv);
  nct_expect_drop(h, SERVER_CLOSED, srv);
  nct_env_finish(e);
}

/* Naming an fd socket that is unknown or another handler's (both EBADF)
 * fails the write, and so the socket it was written on (PROTOCOL.md 4: a
 * Write that cannot be carried out is a SocketError, keeping acks exact);
 * nothing reaches the peer and the named socket is untouched. */
static void expect_fd_write_fails(nct_env *e, nct_client *h, uint64_t fd_socket,
                                  const char *code) {
  pair p;
  make_pair(e, h, &p);
  nct_cmd_write_fd(h, p.s1, fd_socket, "x", 1);
  nct_event *ev = nct_expect(h, SOCKET_ERROR, p.s1);
  assert_string_equal(ev->ev->socket_error->code, code);
  nct_event_free(ev);
  ev = nct_expect(h, CLOSED, p.s1);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  int passed;
  char c;
  if (recv_with_fd(p.u, &c, 1, &passed) != 0 || passed >= 0)
    nct_fail("the peer received data or an fd from a refused write");
  close(p.u);
  nct_cmd_write(h, p.s2, "s2", 2);
  nct_peer_expect(p.p2, "s2", 2);
  nct_wait_acks(h, p.s2, 1, 2);
  nct_close_both(h, p.s2, p.p2);
  close(p.ulfd);
  close(p.tlfd);
}

static void test_fdpass_write_fd_bad_id(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "sender");
  nct_env_bystander_start(e);
  expect_fd_write_fails(e, h, 0x00000000deadbeefull, "EBADF");
  expect_fd_write_fails(e, h, e->by_socket, "EBADF");
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

/* Sending an fd without data fails the socket with EINVAL. Node v0.4's
 * write(data, fd) destroyed the socket with the error a failed send threw,
 * so this is SocketError + Closed{had_error}, not a command Error. */
static void test_fdpass_write_fd_empty_data(void **state) {
  nct_env *e = *state;
  nct_env_start(e, NULL);
  nct_client *h = nct_env_handler(e, "sender");
  pair p;
  make_pair(e, h, &p);
  nct_env_bystander_start(e);

  nct_cmd_write_fd(h, p.s1, p.s2, "", 0);
  nct_event *ev = nct_expect(h, SOCKET_ERROR, p.s1);
  assert_string_equal(ev->ev->socket_error->code, "EINVAL");
  nct_event_free(ev);
  ev = nct_expect(h, CLOSED, p.s1);
  assert_true(ev->ev->closed->had_error);
  nct_event_free(ev);
  int passed;
  char c;
  if (recv_with_fd(p.u, &c, 1, &passed) != 0 || passed >= 0)
    nct_fail("the peer received data or an fd from a refused write");
  close(p.u);
  /* S2, the socket that was to be sent, is untouched. */
  nct_cmd_write(h, p.s2, "s2", 2);
  nct_peer_expect(p.p2, "s2", 2);
  nct_wait_acks(h, p.s2, 1, 2);
  nct_close_both(h, p.s2, p.p2);
  close(p.ulfd);
  close(p.tlfd);
  nct_env_bystander_check(e);
  nct_env_finish(e);
}

#define T(f) cmocka_unit_test_setup_teardown(f, nct_env_setup, nct_env_teardown)

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      T(test_fdpass_send_fd_with_data),
      T(test_fdpass_receive_fd),
      T(test_fdpass_write_fd_bad_id),
      T(test_fdpass_write_fd_empty_data),
  };
  return NCT_RUN(argc, argv, tests);
}
