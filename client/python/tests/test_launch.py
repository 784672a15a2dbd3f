#!/usr/bin/python3
"""netcore_launch, the Python tests' netcore launcher, against the real netcore:
ready means --ping is answered, an exit at start is reported with its status,
and a test process that ends half-way leaves no netcore and no directory.

usage: test_launch.py --netcore PATH [unittest args]
"""

import os
import subprocess
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
import netcore_launch  # noqa: E402

NETCORE = None


class TestLaunch(unittest.TestCase):
    def test_ready_then_stop_removes_its_dir(self):
        nc = netcore_launch.Netcore(NETCORE).start()
        self.assertTrue(nc.alive())
        self.assertTrue(nc.ping())
        self.assertEqual(nc.stop(), 0)
        self.assertFalse(os.path.exists(nc.dir))

    def test_exit_at_start_is_reported(self):
        nc = netcore_launch.Netcore(NETCORE, ["--no-such-flag"])
        with self.assertRaises(netcore_launch.StartError) as cm:
            nc.start()
        self.assertIn("status 2", str(cm.exception))
        nc.stop()

    def test_leftovers_reaped_when_the_test_process_fails(self):
        script = ("import sys; sys.path.insert(0, %r); import netcore_launch\n"
                  "nc = netcore_launch.Netcore(%r).start()\n"
                  "print(nc.pid, nc.dir, flush=True)\n"
                  "raise AssertionError('a test failed half-way')\n" % (HERE, NETCORE))
        p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                           timeout=60)
        self.assertEqual(p.returncode, 1, p.stderr)
        pid, path = p.stdout.split()
        with self.assertRaises(ProcessLookupError):
            os.kill(int(pid), 0)
        self.assertFalse(os.path.exists(path))


if __name__ == "__main__":
    args = sys.argv[1:]
    if "--netcore" in args:
        i = args.index("--netcore")
        NETCORE = args[i + 1]
        del args[i:i + 2]
    if not NETCORE or not os.access(NETCORE, os.X_OK):
        sys.exit("test_launch.py: give the netcore binary with --netcore PATH (got %r)" % NETCORE)
    unittest.main(argv=[sys.argv[0]] + args)
