/* addr.c: see addr.h. */
#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stddef.h>
#include <netinet/in.h>
#include <string.h>

#include "errors.h"

int ncd_addr_check_port(int64_t port, int allow_zero) {
  if (port < (allow_zero ? 0 : 1) || port > 65535) return NCD_ERR_SOCKET_BAD_PORT;
  return 0;
}

int ncd_addr_parse_ip(const char *host, uint32_t port, struct sockaddr_storage *ss,
                      socklen_t *len) {
  memset(ss, 0, sizeof *ss);
  struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
  if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
    in4->sin_family = AF_INET;
    in4->sin_port = htons((uint16_t)port);
    *len = sizeof *in4;
    return 0;
  }
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
  char buf[INET6_ADDRSTRLEN + IF_NAMESIZE + 2];
  if (strlen(host) >= sizeof buf) return NCD_EINVAL;
  strcpy(buf, host);
  char *zone = strchr(buf, '%');
  if (zone) *zone++ = '\0';
  if (inet_pton(AF_INET6, buf, &in6->sin6_addr) != 1) return NCD_EINVAL;
  if (zone) {
    unsigned idx = if_nametoindex(zone);
    if (idx == 0) return NCD_EINVAL;
    in6->sin6_scope_id = idx;
  }
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons((uint16_t)port);
  *len = sizeof *in6;
  return 0;
}

int ncd_addr_unix(const char *path, struct sockaddr_un *sun, socklen_t *len) {
  size_t n = strlen(path);
  if (n == 0) return NCD_EINVAL;
  if (n >= sizeof sun->sun_path) return NCD_ENAMETOOLONG;
  memset(sun, 0, sizeof *sun);
  sun->sun_family = AF_UNIX;
  memcpy(sun->sun_path, path, n);
  *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
  return 0;
}

int ncd_addr_from_sockaddr(const struct sockaddr *sa, socklen_t len, ncc_addr *out) {
  memset(out, 0, sizeof *out);
  switch (sa->sa_family) {
  case AF_INET: {
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
    out->family = NCC_FAMILY_IPV4;
    inet_ntop(AF_INET, &in4->sin_addr, out->address, sizeof out->address);
    out->port = ntohs(in4->sin_port);
    return 0;
  }
  case AF_INET6: {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    out->family = NCC_FAMILY_IPV6;
    inet_ntop(AF_INET6, &in6->sin6_addr, out->address, sizeof out->address);
    out->port = ntohs(in6->sin6_port);
    return 0;
  }
  case AF_UNIX: {
    const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
    out->family = NCC_FAMILY_UNIX;
    size_t max = len > offsetof(struct sockaddr_un, sun_path)
                     ? len - offsetof(struct sockaddr_un, sun_path)
                     : 0;
    if (max > sizeof sun->sun_path) max = sizeof sun->sun_path;
    /* An abstract or unnamed socket has no path to show. */
    if (max > 0 && sun->sun_path[0] != '\0') memcpy(out->address, sun->sun_path, strnlen(sun->sun_path, max));
    return 0;
  }
  default:
    return NCD_EAFNOSUPPORT;
  }
}

int ncd_addr_of_fd(int fd, int peer, ncc_addr *out) {
  struct sockaddr_storage ss;
  socklen_t len = sizeof ss;
  memset(out, 0, sizeof *out);
  int rc = peer ? getpeername(fd, (struct sockaddr *)&ss, &len)
                : getsockname(fd, (struct sockaddr *)&ss, &len);
  if (rc != 0) return -errno;
  return ncd_addr_from_sockaddr((struct sockaddr *)&ss, len, out);
}

int ncd_addr_is_wildcard(const ncc_addr *a) {
  if (a->family == NCC_FAMILY_IPV4) return strcmp(a->address, "0.0.0.0") == 0;
  if (a->family == NCC_FAMILY_IPV6) return strcmp(a->address, "::") == 0;
  return a->family != NCC_FAMILY_UNIX;
}
