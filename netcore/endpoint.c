/* endpoint.c: see endpoint.h. */
#include "endpoint.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "errors.h"
#include "log.h"

/* A lock file that keeps changing under us means something else keeps
 * removing it; give up after this many rounds rather than spin. */
#define LOCK_TRIES 8

typedef struct claim {
  char path[PATH_MAX];      /* the socket file */
  char lock[PATH_MAX + 8];  /* <path>.lock */
  int lock_fd;              /* flock'ed for the whole run */
  int group_access;
  int bound;                /* dev/ino are those of the file ZeroMQ made */
  dev_t dev;
  ino_t ino;
} claim;

static claim claims[NCD_MAX_BINDS];
static int nclaims;

static const char *err_name(int e) { return ncd_err_name(-e); }

/* The file path of an ipc:// endpoint, or NULL for endpoints that have none
 * (other transports, abstract "@name" sockets, the "*" wildcard). */
static const char *ipc_path(const char *ep) {
  if (strncmp(ep, "ipc://", 6) != 0) return NULL;
  const char *p = ep + 6;
  if (*p == '\0' || *p == '@' || strcmp(p, "*") == 0) return NULL;
  return p;
}

static claim *find_claim(const char *path) {
  for (int i = 0; i < nclaims; i++)
    if (strcmp(claims[i].path, path) == 0) return &claims[i];
  return NULL;
}

static void refuse_in_use(const char *path, long pid) {
  if (pid > 0)
    ncd_error("EADDRINUSE: another process serves ipc://%s (pid %ld); stop it or --bind "
              "another endpoint",
              path, pid);
  else
    ncd_error("EADDRINUSE: another process serves ipc://%s (pid unknown); stop it or --bind "
              "another endpoint",
              path);
}

/* Splits path into its directory (into dir) and returns 0, or -1 if the
 * path has no directory part worth checking (relative, no '/'). */
static int dir_of(const char *path, char *dir, size_t cap) {
  const char *slash = strrchr(path, '/');
  if (slash == NULL) return -1;
  size_t len = slash == path ? 1 : (size_t)(slash - path);
  if (len >= cap) return -1;
  memcpy(dir, path, len);
  dir[len] = '\0';
  return 0;
}

/* Whoever may write to the parent of the endpoint's directory may rename the
 * directory away and put their own in its place: the parent must be
 * netcore's user's or root's, and writable by others only when sticky. */
static int check_parent(const char *dir) {
  char parent[PATH_MAX];
  struct stat st;
  if (dir_of(dir, parent, sizeof parent) != 0) return 0;
  if (stat(parent, &st) != 0) {
    ncd_error("%s: the directory %s for the default endpoint does not exist: %s",
              err_name(errno), parent, strerror(errno));
    return -1;
  }
  int others_write = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && !(st.st_mode & S_ISVTX);
  if ((st.st_uid != geteuid() && st.st_uid != 0) || others_write) {
    ncd_error("EACCES: %s (uid %lu, mode %04o) lets another user replace the endpoint's "
              "directory; refusing it (set XDG_RUNTIME_DIR to a private directory)",
              parent, (unsigned long)st.st_uid, (unsigned)(st.st_mode & 07777));
    return -1;
  }
  return 0;
}

/* Makes the default endpoint's directory, or accepts the existing one only
 * if it is a real directory of netcore's user that nobody else may write to;
 * then gives it exactly the wanted mode. */
static int prepare_dir(const char *path, int group_access) {
  char dir[PATH_MAX];
  mode_t want = group_access ? 0750 : 0700;
  if (dir_of(path, dir, sizeof dir) != 0) return 0;
  if (check_parent(dir) != 0) return -1;
  if (mkdir(dir, want) == 0) ncd_info("created %s (mode %04o)", dir, (unsigned)want);
  else if (errno != EEXIST) {
    ncd_error("%s: cannot create the endpoint's directory %s: %s", err_name(errno), dir,
              strerror(errno));
    return -1;
  }
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    ncd_error("%s: %s is not a directory netcore can use (a symlink?): %s", err_name(errno), dir,
              strerror(errno));
    return -1;
  }
  struct stat st;
  int rc = -1;
  if (fstat(fd, &st) != 0)
    ncd_error("%s: cannot stat %s: %s", err_name(errno), dir, strerror(errno));
  else if (st.st_uid != geteuid())
    ncd_error("EACCES: the endpoint's directory %s belongs to uid %lu, not to netcore's uid %lu; "
              "refusing it (remove it, or set XDG_RUNTIME_DIR to a private directory)",
              dir, (unsigned long)st.st_uid, (unsigned long)geteuid());
  else if (st.st_mode & (S_IWGRP | S_IWOTH))
    ncd_error("EACCES: others may write to the endpoint's directory %s (mode %04o); refusing it "
              "(remove it, netcore makes it %04o)",
              dir, (unsigned)(st.st_mode & 07777), (unsigned)want);
  else if ((st.st_mode & 07777) != want && fchmod(fd, want) != 0)
    ncd_error("%s: cannot set mode %04o on %s: %s", err_name(errno), (unsigned)want, dir,
              strerror(errno));
  else
    rc = 0;
  close(fd);
  return rc;
}

static long read_pid(int fd) {
  char buf[32];
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return -1;
  buf[n] = '\0';
  long pid = strtol(buf, NULL, 10);
  return pid > 0 ? pid : -1;
}

/* Takes c->lock, or says who holds it. A holder removes its lock file as it
 * exits, so a file that was opened, then removed before flock succeeded, is
 * not the lock any more: check that the path still names the locked file. */
static int take_lock(claim *c) {
  for (int tries = 0; tries < LOCK_TRIES; tries++) {
    int fd = open(c->lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
      ncd_error("%s: cannot open the lock file %s: %s", err_name(errno), c->lock,
                strerror(errno));
      return -1;
    }
    struct stat st, now;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
      ncd_error("EACCES: the lock file %s is not a regular file of netcore's uid %lu; "
                "refusing it",
                c->lock, (unsigned long)geteuid());
      close(fd);
      return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      if (errno == EWOULDBLOCK) refuse_in_use(c->path, read_pid(fd));
      else
        ncd_error("%s: cannot lock %s: %s", err_name(errno), c->lock, strerror(errno));
      close(fd);
      return -1;
    }
    if (stat(c->lock, &now) == 0 && now.st_dev == st.st_dev && now.st_ino == st.st_ino) {
      char pid[32];
      int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
      if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n)
        ncd_warn("cannot write the pid into %s: %s", c->lock, strerror(errno));
      c->lock_fd = fd;
      return 0;
    }
    close(fd);
  }
  ncd_error("EBUSY: the lock file %s keeps being replaced; refusing to start", c->lock);
  return -1;
}

/* 1 if something accepts connections on the socket file path (*pid: its pid
 * when the kernel says), 0 if nobody does (stale), or -errno. */
static int probe(const char *path, long *pid) {
  struct sockaddr_un sa = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof sa.sun_path) return -ENAMETOOLONG;
  memcpy(sa.sun_path, path, strlen(path) + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  int e = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 ? 0 : errno;
  if (e == 0) {
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 && cr.pid > 0) *pid = cr.pid;
  }
  close(fd);
  /* EAGAIN: a full backlog is a listener too; EPROTOTYPE: a live socket of
   * another type (datagram) holds the path. */
  if (e == 0 || e == EAGAIN || e == EPROTOTYPE) return 1;
  if (e == ECONNREFUSED) return 0;
  return -e;
}

/* With the lock held: what is at the path already? Nothing, or a stale
 * socket (removed) lets the bind go on; a live socket or any other file
 * (libzmq would unlink it, whatever it is) stops netcore. */
static int clear_path(claim *c) {
  struct stat st;
  if (lstat(c->path, &st) != 0) {
    if (errno == ENOENT) return 0;
    ncd_error("%s: cannot look at %s: %s", err_name(errno), c->path, strerror(errno));
    return -1;
  }
  if (!S_ISSOCK(st.st_mode)) {
    ncd_error("EEXIST: %s exists and is not a socket; netcore will not replace it", c->path);
    return -1;
  }
  long pid = -1;
  int r = probe(c->path, &pid);
  if (r == 1) {
    refuse_in_use(c->path, pid);
    return -1;
  }
  if (r < 0) {
    ncd_error("%s: cannot tell whether %s is in use: %s", err_name(-r), c->path, strerror(-r));
    return -1;
  }
  if (unlink(c->path) != 0 && errno != ENOENT) {
    ncd_error("%s: cannot remove the stale socket file %s: %s", err_name(errno), c->path,
              strerror(errno));
    return -1;
  }
  ncd_info("removed the stale socket file %s (nobody listened on it)", c->path);
  return 0;
}

static int claim_one(const ncd_config *cfg, const char *ep) {
  const char *path = ipc_path(ep);
  if (path == NULL || find_claim(path)) return 0;
  claim *c = &claims[nclaims];
  if (strlen(path) >= sizeof c->path) {
    ncd_error("ENAMETOOLONG: the endpoint path %s is too long", path);
    return -1;
  }
  memset(c, 0, sizeof *c);
  c->lock_fd = -1;
  c->group_access = cfg->group_access;
  snprintf(c->path, sizeof c->path, "%s", path);
  snprintf(c->lock, sizeof c->lock, "%s.lock", path);
  if (strcmp(ep, cfg->default_endpoint) == 0 && prepare_dir(path, cfg->group_access) != 0)
    return -1;
  if (take_lock(c) != 0) return -1;
  nclaims++; /* from here on release removes the lock file */
  return clear_path(c);
}

int ncd_endpoint_claim(const ncd_config *cfg) {
  for (int i = 0; i < cfg->nbinds; i++)
    if (claim_one(cfg, cfg->binds[i]) != 0) return -1;
  return 0;
}

int ncd_endpoint_bind(void *zsock, const char *ep) {
  const char *path = ipc_path(ep);
  claim *c = path ? find_claim(path) : NULL;
  /* libzmq binds in the calling thread and creates the file with 0777 &
   * ~umask; no other thread of netcore creates files yet. */
  mode_t old = 0;
  if (c) old = umask(c->group_access ? 0117 : 0177);
  int rc = zmq_bind(zsock, ep);
  int e = errno;
  if (c) umask(old);
  if (rc != 0) {
    ncd_error("%s: cannot bind %s: %s", err_name(e), ep, zmq_strerror(e));
    return -1;
  }
  struct stat st;
  if (c && lstat(c->path, &st) == 0) {
    c->bound = 1;
    c->dev = st.st_dev;
    c->ino = st.st_ino;
  }
  return 0;
}

void ncd_endpoint_release(void) {
  for (int i = 0; i < nclaims; i++) {
    claim *c = &claims[i];
    struct stat st;
    if (c->bound && lstat(c->path, &st) == 0 && st.st_dev == c->dev && st.st_ino == c->ino &&
        unlink(c->path) != 0 && errno != ENOENT)
      ncd_warn("cannot remove %s: %s", c->path, strerror(errno));
    /* Unlinked while still locked: a netcore that opened this file before the
     * unlink sees, once it gets the lock, that the path names another file. */
    if (unlink(c->lock) != 0 && errno != ENOENT)
      ncd_warn("cannot remove %s: %s", c->lock, strerror(errno));
    close(c->lock_fd);
  }
  nclaims = 0;
}
