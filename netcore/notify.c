/* notify.c: see notify.h. */
#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"

int ncd_notify(const char *state) {
  const char *path = getenv("NOTIFY_SOCKET");
  if (path == NULL || *path == '\0') return 0;
  struct sockaddr_un sun = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if ((path[0] != '/' && path[0] != '@') || len >= sizeof sun.sun_path) {
    ncd_warn("NOTIFY_SOCKET '%s' is not a UNIX socket path or @name", path);
    return -EINVAL;
  }
  memcpy(sun.sun_path, path, len);
  if (path[0] == '@') sun.sun_path[0] = '\0'; /* abstract namespace, not NUL-terminated */
  socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + (path[0] == '/'));
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -errno;
  ssize_t n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, alen);
  int err = n < 0 ? errno : 0;
  close(fd);
  if (err) ncd_warn("cannot notify %s: %s", path, strerror(err));
  return -err;
}
