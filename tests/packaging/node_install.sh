#!/usr/bin/env bash
# netcore-net installed as npm users install it: `npm pack` in client/node, then
# `npm install ./netcore-net-*.tgz` in an empty folder far from the repository;
# require('netcore-net') there runs the seed's echo against a real netcore, and
# TypeScript (the package's devDependency) type-checks a program against the
# package's index.d.ts: a well-typed one passes --strict, a wrong one fails.
# usage: node_install.sh SRC_DIR NETCORE_BINARY
src=$(cd "$1" && pwd); netcore=$2
. "$(dirname "$0")/common.sh"
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
(cd "$src/client/node" && npm pack --silent --pack-destination "$PKG_TMP" >/dev/null)
tgz=$(ls "$PKG_TMP"/netcore-net-*.tgz)
listing=$(tar -tzf "$tgz")
for f in package/package.json package/index.d.ts package/netcore.proto package/nc_errors.h \
         package/LICENSE package/lib/index.js package/lib/socket.js; do
  grep -qx "$f" <<<"$listing" || fail "$f missing from $(basename "$tgz")"
done
! grep -q '^package/test/' <<<"$listing" || fail "tests shipped in the package"
for f in netcore.proto nc_errors.h LICENSE; do
  [ ! -e "$src/client/node/$f" ] || fail "postpack left client/node/$f behind"
done

mkdir "$PKG_TMP/app" && cd "$PKG_TMP/app"
npm install --silent --prefer-offline "$tgz" >/dev/null
[ ! -e node_modules/netcore-net/test ] || fail "tests installed"
cat >echo.js <<'JS'
const net = require('netcore-net');
net.createServer((c) => {
  c.write('hello\r\n');
  c.pipe(c);
}).listen(Number(process.argv[2]), '127.0.0.1');
JS
node -e "const p = require('netcore-net/package.json'); if (p.license !== 'MIT' || !p.types) process.exit(1)" \
  || fail "package.json through exports"
start_netcore "$netcore"
port=$(free_port)
start_bg node echo.js "$port"
check_echo "$port"

cat >ok.ts <<'TS'
import * as net from 'netcore-net';
const server: net.Server = net.createServer({ allowHalfOpen: false }, (c: net.Socket) => {
  c.write('hello\r\n');
  c.pipe(c);
});
server.listen(0, '127.0.0.1', () => {
  const a = server.address() as net.AddressInfo;
  const s: net.Socket = net.createConnection({ port: a.port, host: '127.0.0.1' }, () => s.end('x'));
  s.on('data', (d: Buffer) => d.length);
  s.on('close', (hadError: boolean) => server.close((err?: Error) => err));
});
const family: number = net.isIP('::1');
TS
cat >wrong.ts <<'TS'
import * as net from 'netcore-net';
const family: string = net.isIP('::1');
TS
tsc=$src/client/node/node_modules/.bin/tsc
[ -x "$tsc" ] || fail "no tsc: run npm ci in client/node (typescript is a devDependency)"
tsflags=(--noEmit --strict --module commonjs --moduleResolution node --target es2020 --types node)
"$tsc" "${tsflags[@]}" ok.ts || fail "tsc --strict on a program using the package's types"
if "$tsc" "${tsflags[@]}" wrong.ts >tsc.out; then
  fail "tsc accepted a string typed from isIP(): index.d.ts is not used"
fi
grep -q "TS2322" tsc.out || fail "tsc: $(cat tsc.out)"
echo "node_install: npm pack -> npm install in an empty folder; require() echo ok; types ok"
