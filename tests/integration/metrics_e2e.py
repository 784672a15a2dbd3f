#!/usr/bin/python3
"""Observability end to end (issue 16), against the real netcore binary:

  prometheus   a real Prometheus (Debian's `prometheus`) started with a scrape
               config for netcore's --metrics-listen 127.0.0.1:0 port; after a
               known load (N connections, M bytes each way through an echo
               handler) its HTTP API returns the netcore series with exactly
               those numbers; `promtool check metrics` finds nothing to say
  status       `netcore status` prints the handler and listener table
  ping         `netcore --ping` exits 0 against a live netcore, non-zero
               against nothing
  json_logs    --log-format json --log-level debug: every stderr line parses
               as a JSON object, and the connection lines carry owner,
               addresses, bytes each way, duration and reason

usage: metrics_e2e.py NETCORE_BIN  (standard library + the Python client)
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "client", "python"))
import netcore_net as net  # noqa: E402

N, M = 4, 50000
TIMEOUT = 30.0


def fail(msg):
    print("FAIL " + msg, flush=True)
    sys.exit(1)


def wait_for(what, fn, timeout=TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    fail("timed out waiting for " + what)


class Netcore:
    def __init__(self, binary, tmp, *flags):
        self.endpoint = "ipc://%s/nc.sock" % tmp
        self.err_path = os.path.join(tmp, "netcore.err")
        self.err = open(self.err_path, "w")
        self.p = subprocess.Popen([binary, "--bind", self.endpoint, "--metrics-listen", "127.0.0.1:0"]
                                  + list(flags), stderr=self.err)
        self.port = int(wait_for("the metrics address", lambda: (re.search(
            r"metrics on http://127\.0\.0\.1:(\d+)/metrics", self.log()) or [None, None])[1]))

    def log(self):
        with open(self.err_path) as f:
            return f.read()

    def stop(self):
        self.p.terminate()
        if self.p.wait(TIMEOUT) != 0:
            fail("netcore exited %s" % self.p.returncode)
        self.err.close()


def echo_load(nc):
    """An echo handler (the Python library) and N clients sending M bytes each."""
    code = r"""
import sys, netcore_net as net
def on_conn(c):
    c.on("data", lambda d: c.write(d))
srv = net.create_server(on_conn, netcore=net.Netcore(sys.argv[1], name="e2e-echo"))
srv.listen(0, "127.0.0.1", lambda: print(srv.address()["port"], flush=True))
net.run()
"""
    env = dict(os.environ, PYTHONPATH=sys.path[0], PYTHONDONTWRITEBYTECODE="1")
    h = subprocess.Popen(["/usr/bin/python3", "-c", code, nc.endpoint], stdout=subprocess.PIPE,
                         env=env, text=True)
    port = int(h.stdout.readline())
    data = os.urandom(M)
    for _ in range(N):
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        got = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        s.close()
        if bytes(got) != data:
            fail("echo returned %d bytes, not the %d sent" % (len(got), M))
    return h


def test_prometheus(nc, tmp, binary):
    h = echo_load(nc)
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % nc.port, timeout=TIMEOUT).read()
    pt = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True)
    if pt.returncode != 0 or pt.stdout.strip() or pt.stderr.strip():
        fail("promtool check metrics: %s %s" % (pt.stdout.decode(), pt.stderr.decode()))
    print("PASS promtool check metrics (%d bytes, clean)" % len(text), flush=True)

    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: netcore\n"
                "    static_configs:\n      - targets: ['127.0.0.1:%d']\n" % nc.port)
    with socket.socket() as s:  # a free port for Prometheus's own API
        s.bind(("127.0.0.1", 0))
        api_port = s.getsockname()[1]
    plog = open(os.path.join(tmp, "prometheus.log"), "w")
    prom = subprocess.Popen(["prometheus", "--config.file=" + cfg,
                             "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % api_port],
                            stdout=plog, stderr=plog)
    try:
        def query(q):
            url = "http://127.0.0.1:%d/api/v1/query?query=%s" % (api_port, urllib.parse.quote(q))
            try:
                r = json.load(urllib.request.urlopen(url, timeout=5))
            except OSError:
                return None
            return r["data"]["result"] if r.get("status") == "success" else None

        res = wait_for("Prometheus to scrape netcore", lambda: query(
            'netcore_handler_read_bytes_total{job="netcore"}'), timeout=60)
        want = N * M
        echo = [r for r in res if float(r["value"][1]) == want]
        if not echo:
            fail("Prometheus has no handler with %d bytes read: %r" % (want, res))
        prefix = echo[0]["metric"]["prefix"]
        for q in ('netcore_handler_written_bytes_total{prefix="%s"}' % prefix,
                  'netcore_read_bytes_total', 'netcore_written_bytes_total'):
            r = query(q)
            if not r or float(r[0]["value"][1]) != want:
                fail("Prometheus: %s = %r, expected %d" % (q, r, want))
        r = query('netcore_connections_opened_total{how="accepted"}')
        if not r or float(r[0]["value"][1]) != N:
            fail("Prometheus: accepted connections %r, expected %d" % (r, N))
        r = query('up{job="netcore"}')
        if not r or r[0]["value"][1] != "1":
            fail("Prometheus: up = %r" % r)
        r = query("netcore_loop_turn_seconds_count")
        if not r or float(r[0]["value"][1]) <= 0:
            fail("Prometheus: no loop turn histogram: %r" % r)
        print("PASS prometheus: scraped, %d bytes each way and %d connections as sent"
              % (want, N), flush=True)
    finally:
        prom.terminate()
        prom.wait(TIMEOUT)
        plog.close()

    out = subprocess.run([binary, "status", "--endpoint", nc.endpoint], capture_output=True,
                         text=True, timeout=TIMEOUT)
    if out.returncode != 0:
        fail("netcore status exited %d: %s" % (out.returncode, out.stderr))
    lines = out.stdout.splitlines()
    if not any(l.startswith("HANDLERS (") for l in lines) or \
            not any(l.startswith("LISTENERS (1)") for l in lines):
        fail("netcore status: no handler/listener tables:\n" + out.stdout)
    row = [l for l in lines if l.split()[:2] and l.split()[1] == prefix]
    if not row or "48.8 KiB" not in row[0] and "195.3 KiB" not in row[0]:
        fail("netcore status: no row for handler %s with its bytes:\n%s" % (prefix, out.stdout))
    if not any(l.startswith("tcp:127.0.0.1:") for l in lines):
        fail("netcore status: listener missing:\n" + out.stdout)
    print("PASS status: table with the echo handler and its listener", flush=True)
    h.terminate()
    h.wait(TIMEOUT)


def test_ping(nc, tmp, binary):
    r = subprocess.run([binary, "--ping", "--endpoint", nc.endpoint], capture_output=True,
                       timeout=TIMEOUT)
    if r.returncode != 0:
        fail("--ping against a live netcore exited %d: %s" % (r.returncode, r.stderr))
    r = subprocess.run([binary, "--ping", "--endpoint", "ipc://%s/nobody.sock" % tmp,
                        "--timeout-ms", "500"], capture_output=True, timeout=TIMEOUT)
    if r.returncode == 0:
        fail("--ping against nothing exited 0")
    log = nc.log()
    if "netcore-ping" not in log or log.count('"reason":"said Bye"') < 1:
        fail("the ping client did not say Bye:\n" + log[-2000:])
    print("PASS ping: 0 against netcore, %d against nothing; it said Bye" % r.returncode,
          flush=True)


def test_json_logs(nc):
    log = nc.log()
    events = []
    for i, line in enumerate(log.splitlines()):
        try:
            obj = json.loads(line)
        except ValueError as e:
            fail("log line %d is not JSON (%s): %r" % (i + 1, e, line))
        if not isinstance(obj, dict) or "time" not in obj or "level" not in obj:
            fail("log line %d lacks time/level: %r" % (i + 1, line))
        events.append(obj)
    closed = [e for e in events if e.get("event") == "connection_closed"]
    opened = [e for e in events if e.get("event") == "connection_opened"]
    if len(opened) < N or len(closed) < N:
        fail("%d opened / %d closed connection lines, expected %d" % (len(opened), len(closed), N))
    for e in closed[:N]:
        for k in ("owner", "local", "remote", "bytes_read", "bytes_written", "duration_s", "reason"):
            if k not in e:
                fail("connection_closed without %s: %r" % (k, e))
        if e["bytes_read"] != M or e["bytes_written"] != M or e["reason"] != "finished":
            fail("connection_closed numbers: %r" % e)
    if not any(e.get("event") == "handler_joined" for e in events) or \
            not any(e.get("event") == "handler_gone" and e.get("reason") for e in events):
        fail("no handler_joined/handler_gone lines")
    print("PASS json_logs: %d lines parse, connection and handler lines complete" % len(events),
          flush=True)


def main():
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="nc-metrics-")
    try:
        nc = Netcore(binary, tmp, "--log-level", "debug", "--log-format", "json")
        try:
            test_prometheus(nc, tmp, binary)
            test_ping(nc, tmp, binary)
        finally:
            nc.stop()
        test_json_logs(nc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("all passed", flush=True)


if __name__ == "__main__":
    main()
