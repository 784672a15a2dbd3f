/* streamers.c: see streamers.h. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nct.h"
#include "streamers.h"

const char *lang = "c";

/* Every echo started and not yet reaped: a failed test leaves them to
 * actors_reap_all() (its cmocka teardown) or, at the latest, to exit. An echo
 * left running holds ctest's output pipe and ctest waits for it. */
static pid_t live[16];

static void remember(pid_t pid, int add) {
  for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
    if (add && live[i] == 0) {
      live[i] = pid;
      return;
    }
    if (!add && live[i] == pid) {
      live[i] = 0;
      return;
    }
  }
  if (add) {
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    fail_msg("more than %zu echo processes at once", sizeof live / sizeof live[0]);
  }
}

void actors_reap_all(void) {
  for (size_t i = 0; i < sizeof live / sizeof live[0]; i++) {
    if (live[i] <= 0) continue;
    kill(live[i], SIGKILL);
    waitpid(live[i], NULL, 0);
    live[i] = 0;
  }
}

int actors_teardown(void **state) {
  (void)state;
  actors_reap_all();
  return 0;
}

/* Waits for a's "listening" line (JSON with "port":N); returns N. */
static int await_port(actor_t *a, const char *who) {
  char line[512];
  size_t k = 0;
  while (k + 1 < sizeof line) {
    struct pollfd p = {.fd = a->out, .events = POLLIN};
    if (poll(&p, 1, 20000) <= 0) {
      close(a->out);
      fail_msg("%s printed no line within 20 s", who);
    }
    if (read(a->out, line + k, 1) != 1) fail_msg("%s ended before listening", who);
    if (line[k] == '\n') break;
    k++;
  }
  line[k] = '\0';
  const char *p = strstr(line, "\"port\":");
  if (p == NULL) fail_msg("no port in '%s'", line);
  return atoi(p + 7);
}

/* Starts the chosen echo with args and waits for its "listening" line;
 * returns the port it reports. */
int echo_start(actor_t *a, const char *endpoint, const char *const *args) {
  const char *argv[24];
  int n = 0;
  if (strcmp(lang, "python") == 0) {
    argv[n++] = "/usr/bin/python3";
    argv[n++] = PY_ECHO;
  } else if (strcmp(lang, "node") == 0) {
    argv[n++] = NODE_BIN;
    argv[n++] = NODE_ECHO;
  } else {
    argv[n++] = ECHO_BIN;
  }
  argv[n++] = "--endpoint";
  argv[n++] = endpoint;
  for (int i = 0; args[i] != NULL && n < 23; i++) argv[n++] = args[i];
  argv[n] = NULL;
  int out[2];
  if (pipe(out) != 0) fail_msg("pipe: %s", strerror(errno));
  a->pid = fork();
  if (a->pid == 0) {
    nct_child_env();
    dup2(out[1], 1);
    close(out[0]);
    execvp(argv[0], (char *const *)argv);
    _exit(127);
  }
  if (a->pid < 0) fail_msg("fork: %s", strerror(errno));
  static int registered;
  if (!registered) {
    atexit(actors_reap_all);
    registered = 1;
  }
  remember(a->pid, 1);
  close(out[1]);
  a->out = out[0];
  return await_port(a, lang);
}

/* --------------------------------------------------------- the old owner */

/* In the forked owner only: its pipe to the test, and whether it greets. */
static int owner_fd, owner_greets;

static void owner_note(nc_socket_t *c, int status, void *arg) {
  (void)c, (void)arg;
  if (status == 0 && write(owner_fd, "c", 1) != 1) _exit(7);
}

static void owner_connection(nc_server_t *server, nc_socket_t *c) {
  (void)server;
  if (owner_greets) /* noted once the greeting reached the kernel */
    nc_socket_write(c, greeting, strlen(greeting), owner_note, NULL);
  else
    owner_note(c, 0, NULL);
}

static void owner_listening(nc_server_t *server) {
  nc_address_t addr;
  nc_server_address(server, &addr);
  dprintf(owner_fd, "owner listening on {\"port\":%d}\n", addr.port);
}

static void owner_main(const char *endpoint, const char *group) {
  nc_loop_t *loop;
  char err[256];
  nc_loop_options_t opts = {.endpoint = endpoint, .name = "owner"};
  if (nc_loop_new(&loop, &opts, err, sizeof err) != 0) _exit(3);
  nc_server_options_t so = {.group = group};
  nc_server_t *server;
  if (nc_server_new(loop, &so, owner_connection, &server) != 0) _exit(4);
  nc_server_events_t ev = {.on_listening = owner_listening, .on_connection = owner_connection};
  nc_server_set_events(server, &ev);
  if (nc_server_listen(server, 0, "127.0.0.1", NULL) != 0) _exit(5);
  nc_loop_run(loop);
  _exit(6);
}

int owner_start(actor_t *a, const char *endpoint, const char *group, int greet) {
  int out[2];
  if (pipe(out) != 0) fail_msg("pipe: %s", strerror(errno));
  a->pid = fork();
  if (a->pid == 0) {
    close(out[0]);
    owner_fd = out[1];
    owner_greets = greet;
    owner_main(endpoint, group);
  }
  if (a->pid < 0) fail_msg("fork: %s", strerror(errno));
  remember(a->pid, 1);
  close(out[1]);
  a->out = out[0];
  return await_port(a, "owner");
}

void owner_wait_connection(actor_t *a) {
  struct pollfd p = {.fd = a->out, .events = POLLIN};
  char c = 0;
  if (poll(&p, 1, 20000) <= 0) fail_msg("the owner took no connection within 20 s");
  if (read(a->out, &c, 1) != 1 || c != 'c') fail_msg("the owner ended before its connection");
}

/* Signals the actor and reaps it (SIGKILL after 10 s); returns the status. */
int echo_stop(actor_t *a, int sig) {
  kill(a->pid, sig);
  remember(a->pid, 0);
  uint64_t deadline = nct_now_ms() + 10000;
  int status = 0;
  while (waitpid(a->pid, &status, WNOHANG) == 0) {
    if (nct_now_ms() > deadline) {
      kill(a->pid, SIGKILL);
      waitpid(a->pid, &status, 0);
      fail_msg("%s echo did not exit within 10 s of signal %d", lang, sig);
    }
    usleep(2000);
  }
  close(a->out);
  return status;
}

/* ------------------------------------------------------------------ clients */

const char greeting[] = "hello\r\n";

static uint8_t pat(size_t i) { return (uint8_t)(i * 7 + (i >> 9) + (i >> 17)); }

/* Reads every client's greeting (and nothing after it), so that the
 * triggers strike mid-stream with every connection taken by an echo. (An
 * adopter greets a connection nothing was written to yet, so a member killed
 * before it took all its Connections leaves no client ungreeted either.) */
static void clients_greeted(client_t *c) {
  uint64_t deadline = nct_now_ms() + 20000;
  for (int left = NCLIENTS; left > 0;) {
    struct pollfd p[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
      p[i].fd = c[i].greet < sizeof greeting - 1 ? c[i].fd : -1;
      p[i].events = POLLIN;
    }
    poll(p, NCLIENTS, 50);
    for (int i = 0; i < NCLIENTS; i++) {
      client_t *x = &c[i];
      if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char g[sizeof greeting];
      ssize_t r = read(x->fd, g, sizeof greeting - 1 - x->greet);
      if (r == 0) fail_msg("client %d: the echo ended before its greeting", i);
      if (r < 0 && errno != EAGAIN) fail_msg("client %d: %s before its greeting", i, strerror(errno));
      for (ssize_t j = 0; j < r; j++, x->greet++)
        if (g[j] != greeting[x->greet])
          fail_msg("client %d: byte %zu of the greeting is 0x%02x", i, x->greet, (uint8_t)g[j]);
      if (r > 0 && x->greet == sizeof greeting - 1) left--;
    }
    if (left > 0 && nct_now_ms() > deadline)
      fail_msg("%d clients not greeted within 20 s", left);
  }
  for (int i = 0; i < NCLIENTS; i++) c[i].last = nct_now_ms();
}

void clients_connect(client_t *c, int port) {
  for (int i = 0; i < NCLIENTS; i++) {
    memset(&c[i], 0, sizeof c[i]);
    c[i].fd = nct_tcp_connect(port);
    fcntl(c[i].fd, F_SETFL, fcntl(c[i].fd, F_GETFL) | O_NONBLOCK);
    c[i].last = nct_now_ms();
  }
  clients_greeted(c);
}

/* Streams the pattern on every client until all have their bytes back and
 * the echo's end; fires the triggers on the way. */
void clients_run(client_t *c, trigger_t *t, int nt) {
  uint8_t buf[CHUNK];
  int left = NCLIENTS;
  while (left > 0) {
    size_t total = 0;
    for (int i = 0; i < NCLIENTS; i++) total += c[i].sent;
    for (int k = 0; k < nt; k++)
      if (!t[k].fired && total >= t[k].at) {
        t[k].fired = 1;
        t[k].fn(t[k].arg);
        for (int i = 0; i < NCLIENTS; i++) c[i].last = nct_now_ms(); /* our pause, not a stall */
      }
    struct pollfd p[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
      p[i].fd = c[i].done ? -1 : c[i].fd;
      p[i].events = POLLIN | (c[i].sent < TOTAL && c[i].sent - c[i].got < WINDOW ? POLLOUT : 0);
    }
    poll(p, NCLIENTS, 50);
    uint64_t now = nct_now_ms();
    for (int i = 0; i < NCLIENTS; i++) {
      client_t *x = &c[i];
      if (x->done) continue;
      if ((p[i].revents & POLLOUT) && x->sent < TOTAL) {
        size_t n = TOTAL - x->sent < CHUNK ? TOTAL - x->sent : CHUNK;
        for (size_t j = 0; j < n; j++) buf[j] = pat(x->sent + j);
        ssize_t w = write(x->fd, buf, n);
        if (w > 0) x->sent += (size_t)w;
      }
      if (x->sent == TOTAL && !x->shut) {
        shutdown(x->fd, SHUT_WR);
        x->shut = 1;
      }
      if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
        ssize_t r = read(x->fd, buf, sizeof buf);
        if (r > 0) {
          if (now - x->last > x->max_gap) x->max_gap = now - x->last;
          x->last = now;
          size_t j = 0;
          for (; j < (size_t)r && x->greet < sizeof greeting - 1; j++, x->greet++)
            if (buf[j] != (uint8_t)greeting[x->greet])
              fail_msg("client %d: byte %zu of the greeting is 0x%02x", i, x->greet, buf[j]);
          for (; j < (size_t)r; j++, x->got++)
            if (x->got >= TOTAL || buf[j] != pat(x->got))
              fail_msg("client %d: echoed byte %zu is 0x%02x, expected 0x%02x (lost, repeated "
                       "or a second greeting)", i, x->got, buf[j], x->got < TOTAL ? pat(x->got) : 0);
        } else if (r == 0) {
          if (x->got != TOTAL)
            fail_msg("client %d: the echo ended after %zu of %u bytes", i, x->got, TOTAL);
          x->done = 1;
          left--;
          close(x->fd);
        } else if (errno != EAGAIN) {
          fail_msg("client %d: %s after %zu of %u bytes", i, strerror(errno), x->got, TOTAL);
        }
      }
      if (!x->done && now - x->last > STALL_MS)
        fail_msg("client %d stalled for %d ms at %zu of %u bytes back", i, STALL_MS, x->got, TOTAL);
    }
  }
}

