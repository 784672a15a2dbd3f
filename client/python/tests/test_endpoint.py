#!/usr/bin/python3
"""netcore_net finds netcore where netcore puts itself by default.

usage: test_endpoint.py --netcore PATH [unittest args]
default_endpoint() follows the rule netcore and every client library share
(XDG_RUNTIME_DIR, root, per-user fallback; the same table as netcore's
tests/unit/test_default_endpoint.c); a handler made without an endpoint reaches
a netcore started without --bind; NETCORE_ENDPOINT and an explicit endpoint
still win.
"""

import os
import sys
import unittest
from unittest import mock

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import netcore_net as net  # noqa: E402
from netcore_launch import Netcore as Daemon  # noqa: E402

NETCORE = None

RULE = [  # (XDG_RUNTIME_DIR or None, euid, endpoint)
    ("/run/user/1000", 1000, "ipc:///run/user/1000/netcore/netcore.sock"),
    ("/run/user/1000//", 1000, "ipc:///run/user/1000/netcore/netcore.sock"),
    ("/run/user/0", 0, "ipc:///run/user/0/netcore/netcore.sock"),
    (None, 0, "ipc:///run/netcore/netcore.sock"),
    ("", 0, "ipc:///run/netcore/netcore.sock"),
    ("relative/dir", 0, "ipc:///run/netcore/netcore.sock"),
    (None, 1000, "ipc:///tmp/netcore-1000/netcore.sock"),
    ("", 4294967294, "ipc:///tmp/netcore-4294967294/netcore.sock"),
]


def env_without(**changes):
    env = {k: v for k, v in os.environ.items() if k not in ("NETCORE_ENDPOINT", "XDG_RUNTIME_DIR")}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


class TestDefaultEndpoint(unittest.TestCase):
    def test_rule(self):
        for xdg, uid, want in RULE:
            with self.subTest(xdg=xdg, uid=uid), \
                    mock.patch.dict(os.environ, env_without(XDG_RUNTIME_DIR=xdg), clear=True), \
                    mock.patch("os.geteuid", return_value=uid):
                self.assertEqual(net.default_endpoint(), want)

    def test_default_reaches_netcore_and_overrides_win(self):
        daemon = Daemon(NETCORE, default_endpoint=True, env=env_without()).start()
        tmp, sock = daemon.dir, daemon.sock_path
        try:
            with mock.patch.dict(os.environ, env_without(XDG_RUNTIME_DIR=tmp), clear=True):
                self.assertEqual(self.listens(net.Netcore(name="default")), "ipc://" + sock)
                # NETCORE_ENDPOINT wins over the default, the argument over both.
                os.environ["NETCORE_ENDPOINT"] = "ipc://%s/nobody.sock" % tmp
                nc = net.Netcore(name="env", connect_timeout_ms=300)
                self.assertEqual(nc.endpoint, os.environ["NETCORE_ENDPOINT"])
                with self.assertRaises(net.NetcoreError) as cm:
                    self.listens(nc)
                self.assertEqual(cm.exception.code, "ERR_NETCORE_UNAVAILABLE")
                self.listens(net.Netcore("ipc://" + sock, name="explicit"))
        finally:
            daemon.stop()

    def listens(self, nc):
        """Listens on port 0 through nc and closes again; returns nc.endpoint,
        or raises the error the server got."""
        got = {}

        def main():
            srv = net.create_server(netcore=nc)
            srv.on("listening", lambda: (got.setdefault("port", srv.address()["port"]),
                                         srv.close()))
            srv.on("error", lambda err: got.setdefault("error", err))
            srv.listen(0, "127.0.0.1")

        net.run(main)
        if "error" in got:
            raise got["error"]
        self.assertGreater(got["port"], 0)
        return nc.endpoint


if __name__ == "__main__":
    if "--netcore" in sys.argv:
        i = sys.argv.index("--netcore")
        NETCORE = sys.argv[i + 1]
        del sys.argv[i:i + 2]
    if not NETCORE or not os.access(NETCORE, os.X_OK):
        sys.exit("test_endpoint.py: give the netcore binary with --netcore PATH (got %r)" % NETCORE)
    unittest.main(verbosity=2)
