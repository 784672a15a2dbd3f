"""netcore_launch: the one way Python tests start the real netcore.

Used by client/python/tests and tests/conformance (standard library only, so
the conformance suite can run against any library's echo). A Netcore gets a
fresh temp dir and an ipc endpoint inside it (or, default_endpoint=True, no
--bind and XDG_RUNTIME_DIR set to the dir), is ready once `netcore --ping`
answers on that endpoint, and on stop() / kill() / exit of the interpreter is
signalled, reaped and its dir removed: a test that fails half-way leaves no
netcore behind. Not thread-safe: call from the test's main thread.
"""

import atexit
import os
import shutil
import signal as _signal
import subprocess
import tempfile
import time

START_TIMEOUT = 10.0  # for netcore to answer --ping
PING_TIMEOUT_MS = 1000  # one --ping; repeated until START_TIMEOUT

_live = []  # every Netcore started and not yet reaped


class StartError(AssertionError):
    """netcore exited, or did not answer --ping, before it was ready."""


class Netcore:
    """One netcore process. extra: more flags. dir: use this directory (kept
    on stop) instead of a fresh one (removed on stop). stderr_path: where its
    stderr goes (default inherited). env: its environment (default os.environ,
    with NETCORE_ENDPOINT unset for default_endpoint)."""

    def __init__(self, binary, extra=(), *, name="netcore", dir=None, sock_name="nc.sock",
                 default_endpoint=False, log_level="warn", stderr_path=None, env=None):
        self.binary = binary
        self.name = name
        self.extra = list(extra)
        self.own_dir = dir is None
        self.dir = dir or tempfile.mkdtemp(prefix="nc-py-")
        self.default_endpoint = default_endpoint
        sock_rel = os.path.join("netcore", "netcore.sock") if default_endpoint else sock_name
        self.sock_path = os.path.join(self.dir, sock_rel)
        self.endpoint = "ipc://" + self.sock_path
        self.log_level = log_level
        self.err_path = stderr_path
        self.env = env
        self.p = None
        self.stopped = False  # set by a test that ends it on purpose

    # -------------------------------------------------------------- start
    def start(self, timeout=START_TIMEOUT):
        """Runs netcore and returns self once it answers --ping; raises
        StartError (with its stderr) if it exits or stays silent."""
        if not os.access(self.binary, os.X_OK):
            raise StartError("netcore binary %s does not exist" % self.binary)
        env = dict(os.environ if self.env is None else self.env)
        argv = [self.binary, "--log-level", self.log_level]
        if self.default_endpoint:
            env["XDG_RUNTIME_DIR"] = self.dir
            env.pop("NETCORE_ENDPOINT", None)
        else:
            argv += ["--bind", self.endpoint]
        err = open(self.err_path, "ab") if self.err_path else None
        try:
            self.p = subprocess.Popen(argv + self.extra, stdin=subprocess.DEVNULL, stderr=err,
                                      env=env)
        finally:
            if err:
                err.close()
        _live.append(self)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while True:
            if self.p.poll() is not None:
                raise StartError("%s exited with status %s before it was ready: %s"
                                 % (self.name, self.p.returncode, self.stderr_tail()))
            if self.ping():
                return
            if time.monotonic() > deadline:
                self.kill()
                raise StartError("%s did not answer --ping on %s within %.0f s"
                                 % (self.name, self.endpoint, timeout))
            time.sleep(0.01)

    def ping(self, timeout_ms=PING_TIMEOUT_MS):
        """Whether a netcore answers Hello on this endpoint now."""
        return subprocess.run([self.binary, "--ping", "--endpoint", self.endpoint,
                               "--timeout-ms", str(timeout_ms)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0

    # -------------------------------------------------------------- state
    @property
    def pid(self):
        return self.p.pid

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def stderr_tail(self, n=600):
        if not self.err_path:
            return "(stderr not captured)"
        try:
            with open(self.err_path, "rb") as f:
                data = f.read()
        except OSError:
            return ""
        return data[-n:].decode(errors="replace").strip()

    def log(self):
        return self.stderr_tail(1 << 30)

    # -------------------------------------------------------------- end
    def signal(self, sig):
        if self.alive():
            self.p.send_signal(sig)

    def wait(self, timeout):
        """Its exit status, or None if it still runs after timeout seconds."""
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        """SIGKILL and reap; the dir stays (for a restart on the same endpoint)."""
        if self.p is not None:
            if self.p.poll() is None:
                self.p.kill()
            self.p.wait()
        if self in _live:
            _live.remove(self)

    def stop(self, sig=_signal.SIGTERM, timeout=10):
        """sig, then SIGKILL after timeout seconds; reaps it and removes its own
        dir. Returns its exit status."""
        status = None
        if self.p is not None:
            self.signal(sig)
            status = self.wait(timeout)
            if status is None:
                self.kill()
                status = self.p.returncode
        self.kill()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)
        return status

    def __enter__(self):
        return self.start() if self.p is None else self

    def __exit__(self, *exc):
        self.stop()


def _reap_all():
    for nc in list(_live):
        nc.kill()
        if nc.own_dir:
            shutil.rmtree(nc.dir, ignore_errors=True)


atexit.register(_reap_all)
