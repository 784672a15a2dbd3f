#!/usr/bin/env bash
# libnc installed with `cmake --install` into a scratch prefix, then used the
# two ways C users do, from outside the repository: `cc $(pkg-config --cflags
# --libs nc)` and a CMake project with find_package(nc) (nc::nc shared, the
# same library pkg-config gives, and nc::nc_static). Each program is the
# README's echo and runs against a real netcore. Also: libnc.so exports exactly
# the NC_EXTERN functions of the installed headers (all nc_*), its SONAME is
# libnc.so.MAJOR, nc_version() agrees with NC_VERSION_*, and nc.pc's Cflags
# carry nothing of libzmq's.
# usage: libnc_install.sh BUILD_DIR NETCORE_BINARY
build=$(cd "$1" && pwd); netcore=$2
. "$(dirname "$0")/common.sh"
cd "$PKG_TMP"
prefix=$PKG_TMP/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
lib=$(ls -d "$prefix"/lib*/ | head -n1); lib=${lib%/}
so=$lib/libnc.so

nm -D --defined-only "$so" | awk '{print $3}' | sort >exported.txt
grep -h '^NC_EXTERN ' "$prefix"/include/nc/*.h | grep -o 'nc_[a-z0-9_]*(' | sed 's/($//' | sort >declared.txt
[ -s declared.txt ] || fail "no NC_EXTERN declarations found"
diff declared.txt exported.txt >symbols.diff || fail "exported symbols differ from the NC_EXTERN API:
$(head -n 20 symbols.diff)"
readelf -d "$so" | grep -q 'SONAME.*\[libnc\.so\.0\]' || fail "SONAME: $(readelf -d "$so" | grep SONAME)"

export PKG_CONFIG_PATH=$lib/pkgconfig
cflags=$(pkg-config --cflags nc); cflags=${cflags%% }
[ "$cflags" = "-I$lib/pkgconfig/../../include" ] || fail "pkg-config --cflags nc: $cflags"
pkg-config --static --libs nc | grep -q -- '-lzmq' || fail "Libs.private lacks -lzmq"

cat >echo.c <<'C'
#include <nc/nc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void on_connection(nc_server_t *server, nc_socket_t *c) {
  nc_socket_write(c, "hello\r\n", 7, NULL, NULL);
  nc_socket_pipe(c, c);
}

int main(int argc, char **argv) {
  nc_loop_t *loop;
  nc_server_t *server;
  char err[256];
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", NC_VERSION_MAJOR, NC_VERSION_MINOR, NC_VERSION_PATCH);
  if (nc_version() != NC_VERSION_HEX || strcmp(nc_version_string(), want) != 0) {
    fprintf(stderr, "version: runs %s (%x), built with %s\n", nc_version_string(), nc_version(), want);
    return 2;
  }
  if (nc_loop_new(&loop, NULL, err, sizeof err) != 0) return 1; /* NETCORE_ENDPOINT */
  nc_server_new(loop, NULL, on_connection, &server);
  nc_server_listen(server, atoi(argv[1]), "127.0.0.1", NULL);
  nc_loop_run(loop);
  nc_loop_free(loop);
  return 0;
}
C
cc -Wall -Werror -o echo_pc echo.c $(pkg-config --cflags --libs nc)
mkdir -p cmk
cat >cmk/CMakeLists.txt <<'CM'
cmake_minimum_required(VERSION 3.18)
project(nc_user C)
find_package(nc 0.1 REQUIRED)
add_executable(echo_shared ../echo.c)
target_link_libraries(echo_shared PRIVATE nc::nc)
add_executable(echo_static ../echo.c)
target_link_libraries(echo_static PRIVATE nc::nc_static)
CM
cmake -S cmk -B cmk/build -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_FLAGS="-Wall -Werror" >cmk.log 2>&1 \
  || { cat cmk.log; fail "find_package(nc)"; }
cmake --build cmk/build >>cmk.log 2>&1 || { cat cmk.log; fail "building against nc::nc"; }

needs() { readelf -d "$1" | grep -q 'NEEDED.*\[libnc\.so\.0\]'; }
needs echo_pc || fail "pkg-config build does not link libnc.so.0"
needs cmk/build/echo_shared || fail "nc::nc is not the shared libnc.so.0 (pkg-config's)"
! needs cmk/build/echo_static || fail "nc::nc_static links libnc.so"

start_netcore "$netcore"
for prog in ./echo_pc cmk/build/echo_shared cmk/build/echo_static; do
  port=$(free_port)
  start_bg env LD_LIBRARY_PATH="$lib" "$prog" "$port"
  check_echo "$port"
done
echo "libnc_install: $(wc -l <exported.txt) exported symbols, all NC_EXTERN nc_*; pkg-config and find_package(nc) builds run the echo"
