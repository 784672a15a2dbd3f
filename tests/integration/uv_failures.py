#!/usr/bin/python3
"""A libuv start call that fails at startup: netcore says which, and exits 1.

Runs the real netcore with tests/integration/uvfail.c preloaded, each time
with another libuv call made to fail (UV_EMFILE): netcore must log
"cannot <what>: EMFILE", exit 1 at once instead of running half-started, and
leave no ipc socket file behind.

Usage: uv_failures.py NETCORE LIBUVFAIL.so
"""
import os
import subprocess
import sys
import tempfile

NETCORE, SHIM = sys.argv[1], sys.argv[2]
CASES = [
    ("uv_check_start", "cannot start the loop turn check: EMFILE"),
    ("uv_poll_start", "cannot poll the ZAP socket: EMFILE"),
    ("uv_prepare_start", "cannot start the ROUTER flush: EMFILE"),
    ("uv_timer_start", "cannot start the lease timer: EMFILE"),
    ("uv_signal_start", "cannot watch SIGTERM: EMFILE"),
]
failures = []
for call, says in CASES:
    with tempfile.TemporaryDirectory(prefix="nc-uvfail-") as tmp:
        sock = os.path.join(tmp, "nc.sock")
        env = dict(os.environ, LD_PRELOAD=SHIM, NCT_UV_FAIL=call)
        # An ASan build of netcore wants its runtime first among the loaded
        # libraries; the shim only wraps libuv calls, so the order does not matter.
        env["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS", ""),
                                                     "verify_asan_link_order=0"]))
        p = subprocess.Popen([NETCORE, "--bind", "ipc://" + sock], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            _, err = p.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            _, err = p.communicate()
            failures.append(f"{call}: netcore kept running (it ignored the failure)")
            continue
        if p.returncode != 1:
            failures.append(f"{call}: exit {p.returncode}, not 1")
        if says not in err:
            failures.append(f"{call}: stderr does not say \"{says}\": {err[-400:]!r}")
        if os.path.exists(sock):
            failures.append(f"{call}: {sock} left behind")
if failures:
    print("\n".join(failures))
    sys.exit(1)
print(f"uv_failures: {len(CASES)} failed libuv calls each stopped netcore with a message")
