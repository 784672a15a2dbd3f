#!/usr/bin/env bash
# The Debian packages: `cpack -G DEB` makes netcore, libnc0 and libnc-dev;
# apt resolves them (apt-get install --simulate ./*.deb: every dependency is
# a Debian package); unpacked into a scratch root (dpkg -x), the packaged
# netcore runs the packaged nc-echo, and a program built against libnc-dev
# (pkg-config, from that root) runs the echo with libnc0's libnc.so.0. The man
# pages are there and name their programs; the systemd units of systemd/ are
# shipped and start the packaged binary; `netcore --ping` answers.
# usage: deb_install.sh BUILD_DIR
build=$(cd "$1" && pwd)
. "$(dirname "$0")/common.sh"
command -v dpkg-deb >/dev/null || fail "dpkg-deb missing"
cd "$PKG_TMP"
cpack -G DEB --config "$build/CPackConfig.cmake" -B "$PKG_TMP/pkgs" >cpack.log 2>&1 \
  || { cat cpack.log; fail "cpack -G DEB"; }
debs=(pkgs/*.deb)
names=$(for d in "${debs[@]}"; do dpkg-deb -f "$d" Package; done | sort | tr '\n' ' ')
[ "$names" = "libnc-dev libnc0 netcore " ] || fail "packages: $names"
deb() { ls pkgs/"$1"_*.deb; }
dpkg-deb -f "$(deb netcore)" Depends | grep -q 'libzmq5' || fail "netcore: Depends $(dpkg-deb -f "$(deb netcore)" Depends)"
dpkg-deb -f "$(deb libnc0)" Depends | grep -q 'libprotobuf-c1' || fail "libnc0 Depends"
dpkg-deb -f "$(deb libnc-dev)" Depends | grep -q 'libnc0 (= ' || fail "libnc-dev must depend on its libnc0"
dpkg-deb --ctrl-tarfile "$(deb libnc0)" | tar -xO ./shlibs | grep -q '^libnc 0 libnc0' || fail "libnc0 shlibs"
if command -v apt-get >/dev/null; then
  apt-get install --simulate "${debs[@]/#/./}" >apt.log 2>&1 || { cat apt.log; fail "apt cannot install the packages"; }
fi

root=$PKG_TMP/root
for d in "${debs[@]}"; do dpkg -x "$d" "$root"; done
for f in usr/bin/netcore usr/bin/nc-echo usr/bin/nc-proxy usr/lib/libnc.so.0 usr/include/nc/nc.h \
         usr/lib/pkgconfig/nc.pc usr/lib/cmake/nc/ncConfig.cmake usr/share/doc/netcore/copyright; do
  [ -e "$root/$f" ] || fail "$f not in the packages"
done
for f in usr/lib/systemd/system/netcore.service usr/lib/systemd/system/netcore.socket \
         usr/lib/systemd/system/nc-actor@.service usr/lib/sysusers.d/netcore.conf \
         etc/netcore/actors/echo.env; do
  [ -e "$root/$f" ] || fail "$f not in the netcore package"
done
grep -q '^ExecStart=/usr/bin/netcore ' "$root/usr/lib/systemd/system/netcore.service" \
  || fail "netcore.service does not start the packaged /usr/bin/netcore"
dpkg-deb --ctrl-tarfile "$(deb netcore)" | tar -xO ./conffiles | grep -qx /etc/netcore/actors/echo.env \
  || fail "echo.env is not a conffile"
zcat "$root/usr/share/man/man8/netcore.8.gz" | grep -qF '\-\-bind' || fail "netcore(8) does not document --bind"
zcat "$root/usr/share/man/man1/nc-echo.1.gz" | grep -q '^\.TH NC-ECHO 1' || fail "nc-echo(1)"
[ "$(readlink -f "$root/usr/lib/libnc.so")" = "$(readlink -f "$root/usr/lib/libnc.so.0")" ] || fail "libnc.so link"

export LD_LIBRARY_PATH=$root/usr/lib
start_netcore "$root/usr/bin/netcore"
port=$(free_port)
start_bg "$root/usr/bin/nc-echo" --port "$port" --host 127.0.0.1 --endpoint "$NETCORE_ENDPOINT"
check_echo "$port"
"$root/usr/bin/netcore" --ping --endpoint "$NETCORE_ENDPOINT" >/dev/null || fail "packaged netcore --ping"

cat >echo.c <<'C'
#include <nc/nc.h>
#include <stdlib.h>

static void on_connection(nc_server_t *server, nc_socket_t *c) {
  nc_socket_write(c, "hello\r\n", 7, NULL, NULL);
  nc_socket_pipe(c, c);
}

int main(int argc, char **argv) {
  nc_loop_t *loop;
  nc_server_t *server;
  char err[256];
  if (nc_loop_new(&loop, NULL, err, sizeof err) != 0) return 1;
  nc_server_new(loop, NULL, on_connection, &server);
  nc_server_listen(server, atoi(argv[1]), "127.0.0.1", NULL);
  nc_loop_run(loop);
  nc_loop_free(loop);
  return 0;
}
C
PKG_CONFIG_PATH=$root/usr/lib/pkgconfig cc -Wall -Werror -o echo echo.c \
  $(PKG_CONFIG_PATH=$root/usr/lib/pkgconfig pkg-config --cflags --libs nc)
readelf -d echo | grep -q 'NEEDED.*\[libnc\.so\.0\]' || fail "not linked to libnc.so.0"
port=$(free_port)
start_bg ./echo "$port"
check_echo "$port"
echo "deb_install: $names; packaged netcore + nc-echo and a libnc-dev build run the echo"
