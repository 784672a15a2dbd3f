# A JavaScript handler image: the Node.js library and the JavaScript actors.
#   docker build -f docker/node.Dockerfile -t netcore-actor-node .
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-node              # echo.js
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-node goodbye.js
# Debian's nodejs; the npm packages come from the registry at build time. Behind a
# TLS-inspecting proxy, pass its CA (PEM text) for this stage only:
#   --build-arg EXTRA_CA_CERTS="$(cat /usr/local/share/ca-certificates/*.crt)"
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nodejs npm ca-certificates && rm -rf /var/lib/apt/lists/*
ARG EXTRA_CA_CERTS=""
RUN if [ -n "$EXTRA_CA_CERTS" ]; then printf '%s\n' "$EXTRA_CA_CERTS" \
      >/usr/local/share/ca-certificates/build-extra.crt && update-ca-certificates >/dev/null; fi
ENV NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt
# --- the library: switch to the npm package install once client/node ships one ---
COPY client/node/package.json client/node/package-lock.json /opt/netcore/client/node/
RUN cd /opt/netcore/client/node && npm ci --omit=dev --no-audit --no-fund --loglevel=error
COPY client/node/lib /opt/netcore/client/node/lib
# ---

FROM debian:12
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nodejs tini && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 netcore \
 && useradd --uid 10001 --no-create-home --gid netcore --home-dir /nonexistent --shell /usr/sbin/nologin netcore \
 && install -d -o netcore -g netcore -m 0750 /run/netcore
COPY --from=build /opt/netcore/client /opt/netcore/client
COPY proto/netcore.proto /opt/netcore/proto/
COPY actors/node /opt/netcore/actors/node
WORKDIR /opt/netcore/actors/node
ENV NETCORE_ENDPOINT=ipc:///run/netcore/netcore.sock NODE_ENV=production
USER netcore
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/node"]
CMD ["echo.js", "--host", "0.0.0.0", "--port", "8124"]
