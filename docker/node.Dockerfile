# A JavaScript handler image: the netcore-net npm package and the JavaScript actors.
#   docker build -f docker/node.Dockerfile -t netcore-actor-node .
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-node              # echo.js
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-node goodbye.js
# The library is installed as its users install it: `npm pack` in client/node (its
# prepack copies netcore.proto, nc_errors.h and LICENSE in), then `npm install` of that
# tarball in /opt/netcore, where the actors (actors/node/netcore.js) require it; its
# dependencies (zeromq, protobufjs) come from the npm registry at build time. Debian's
# nodejs. Behind a TLS-inspecting proxy, pass its CA (PEM text) for this stage only:
#   --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)"
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nodejs npm ca-certificates && rm -rf /var/lib/apt/lists/*
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" \
      >/usr/local/share/ca-certificates/build-extra.crt && update-ca-certificates >/dev/null; fi
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt \
    npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false
COPY LICENSE /src/
COPY proto/netcore.proto /src/proto/
COPY common/include/nc_errors.h /src/common/include/
COPY client/node/package.json client/node/index.d.ts client/node/README.md /src/client/node/
COPY client/node/lib /src/client/node/lib
COPY client/node/tools /src/client/node/tools
RUN mkdir -p /opt/netcore /pkg && cd /src/client/node \
 && npm pack --silent --pack-destination /pkg >/dev/null \
 && cd /opt/netcore && npm install --omit=dev --no-save --loglevel=error /pkg/netcore-net-*.tgz \
 && rm -rf /root/.npm

FROM debian:12
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nodejs tini && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 netcore \
 && useradd --uid 10001 --no-create-home --gid netcore --home-dir /nonexistent --shell /usr/sbin/nologin netcore \
 && install -d -o netcore -g netcore -m 0750 /run/netcore
COPY --from=build /opt/netcore/node_modules /opt/netcore/node_modules
COPY actors/node /opt/netcore/actors/node
WORKDIR /opt/netcore/actors/node
ENV NETCORE_ENDPOINT=ipc:///run/netcore/netcore.sock NODE_ENV=production
USER netcore
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/node"]
CMD ["echo.js", "--host", "0.0.0.0", "--port", "8124"]
