# A Python handler image: the netcore_net package and the Python actors.
#   docker build -f docker/python.Dockerfile -t netcore-actor-python .
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-python            # echo.py
#   docker run --rm -v netcore-run:/run/netcore netcore-actor-python goodbye.py
# The library is installed as its users install it: `pip install ./client/python`
# (pyproject.toml; setup.py runs protoc while building), into a venv that sees Debian's
# python3-zmq and python3-protobuf (its two dependencies), so nothing comes from PyPI:
# --no-build-isolation --no-index with Debian's setuptools and wheel, as in
# tests/packaging/python_install.sh. The runtime stage gets the venv, not protoc.
FROM debian:12 AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-venv python3-setuptools python3-wheel python3-zmq python3-protobuf \
      protobuf-compiler && rm -rf /var/lib/apt/lists/*
COPY proto/netcore.proto /src/proto/
COPY common/include/nc_errors.h /src/common/include/
COPY client/python/pyproject.toml client/python/setup.py client/python/README.md /src/client/python/
COPY client/python/netcore_net /src/client/python/netcore_net
RUN python3 -m venv --system-site-packages /opt/netcore/venv \
 && /opt/netcore/venv/bin/pip install -q --disable-pip-version-check --no-input \
      --no-build-isolation --no-index --no-cache-dir /src/client/python \
 && find /opt/netcore/venv -name __pycache__ -prune -exec rm -rf {} +

FROM debian:12
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-zmq python3-protobuf tini && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 10001 netcore \
 && useradd --uid 10001 --no-create-home --gid netcore --home-dir /nonexistent --shell /usr/sbin/nologin netcore \
 && install -d -o netcore -g netcore -m 0750 /run/netcore
COPY --from=build /opt/netcore/venv /opt/netcore/venv
COPY actors/python /opt/netcore/actors
WORKDIR /opt/netcore/actors
ENV PATH=/opt/netcore/venv/bin:$PATH NETCORE_ENDPOINT=ipc:///run/netcore/netcore.sock \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER netcore
ENTRYPOINT ["/usr/bin/tini", "--", "/opt/netcore/venv/bin/python"]
CMD ["echo.py", "--host", "0.0.0.0", "--port", "8124"]
