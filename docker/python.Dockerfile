# A Python handler image: the netcore_net library and the Python actors.
#   docker build -f docker/python.Dockerfile -t netcore-actor-python .
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-python            # echo.py
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-python goodbye.py
# The library is copied from client/python as it is today, with its protobuf module
# generated here (Debian's protoc, python3-zmq, python3-protobuf).
FROM debian:12 AS gen
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      protobuf-compiler && rm -rf /var/lib/apt/lists/*
COPY proto/netcore.proto /src/
RUN mkdir /gen && protoc --proto_path=/src --python_out=/gen /src/netcore.proto

FROM debian:12
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-zmq python3-protobuf tini && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 netcore \
 && useradd --uid 10001 --no-create-home --gid netcore --home-dir /nonexistent --shell /usr/sbin/nologin netcore \
 && install -d -o netcore -g netcore -m 0750 /run/netcore
# --- the library: switch to the package install once client/python ships one ---
COPY client/python/netcore_net /opt/netcore/python/netcore_net
COPY --from=gen /gen/netcore_pb2.py /opt/netcore/pb2/
ENV PYTHONPATH=/opt/netcore/python NETCORE_PB2_DIR=/opt/netcore/pb2 PYTHONDONTWRITEBYTECODE=1
# ---
COPY actors/python /opt/netcore/actors
WORKDIR /opt/netcore/actors
ENV NETCORE_ENDPOINT=ipc:///run/netcore/netcore.sock PYTHONUNBUFFERED=1
USER netcore
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/bin/python3"]
CMD ["echo.py", "--host", "0.0.0.0", "--port", "8124"]
