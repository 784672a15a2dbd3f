#!/usr/bin/python3
"""netcore as systemd runs it, without systemd: the units and the service protocol.

usage: test_systemd.py --netcore PATH --echo PATH --units DIR

1. units_verify: `systemd-analyze verify` on systemd/*.service and *.socket, with
   /usr/bin/netcore and /usr/bin/nc-* pointing at this build (skipped, loudly,
   where systemd-analyze is not installed).
2. notify_and_listen_fds: netcore started the way systemd starts a Type=notify
   unit behind netcore.socket: NOTIFY_SOCKET names a datagram socket of the test,
   a listening TCP socket is fd 3, LISTEN_FDS=1 and LISTEN_PID is netcore's pid.
   READY=1 must arrive, and only once the handler endpoint answers Hello
   (`netcore --ping` right after it succeeds); the C echo adopts fd 3 (--fd 3) and a
   client of that inherited listener gets the greeting and its bytes back;
   SIGTERM sends STOPPING=1 and netcore exits 0.
3. listen_pid_elsewhere: LISTEN_FDS meant for another pid is not taken: listenFD(3)
   fails with EBADF.
4. reload_takeover: the unit's ExecReload (kill -USR2 $MAINPID) upgrades netcore in
   place: MAINPID=<new pid> from the old process, READY=1 from the new one, the old
   exits 0 and a connection made before the reload carries on.
Standard library only; run it with /usr/bin/python3.
"""

import argparse
import ctypes
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

TIMEOUT = 15.0


class Failure(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def units_verify(opts, tmp):
    tool = shutil.which("systemd-analyze")
    if tool is None:
        print("SKIP units_verify: systemd-analyze is not installed (Debian package systemd)")
        return
    bindir = os.path.dirname(opts.echo)
    names = []
    for name in sorted(os.listdir(opts.units)):
        if not name.endswith((".service", ".socket")):
            continue
        with open(os.path.join(opts.units, name)) as f:
            text = f.read()
        text = text.replace("/usr/bin/netcore", opts.netcore)
        text = text.replace("/usr/bin/nc-", os.path.join(bindir, ""))
        if name.endswith("@.service"):
            name = name.replace("@.service", "@echo.service")
        with open(os.path.join(tmp, name), "w") as f:
            f.write(text)
        names.append(name)
    check("netcore.service" in names and "netcore.socket" in names
          and "nc-actor@echo.service" in names, "units missing: %s" % names)
    r = subprocess.run([tool, "verify"] + ["./" + n for n in names], cwd=tmp,
                       capture_output=True, text=True, timeout=60)
    out = (r.stdout + r.stderr).strip()
    check(r.returncode == 0 and out == "",
          "systemd-analyze verify: status %d: %s" % (r.returncode, out))


def start_netcore(opts, tmp, listener, listen_pid_self, extra_env):
    endpoint = "ipc://%s/nc.sock" % tmp
    env = dict(os.environ, LISTEN_FDS="1", **extra_env)
    env.pop("NETCORE_ENDPOINT", None)

    # systemd sets LISTEN_PID to the pid it execs: the shell's $$ becomes netcore's;
    # the shell also moves the listener to fd 3.
    fd = listener.fileno()
    pid_expr = "$$" if listen_pid_self else "1"
    proc = subprocess.Popen(
        ["/bin/sh", "-c", 'LISTEN_PID=%s exec "$0" "$@" 3<&%d %d<&-' % (pid_expr, fd, fd),
         opts.netcore, "--bind", endpoint, "--log-level", "warn"],
        env=env, pass_fds=(fd,), stderr=subprocess.PIPE)
    return proc, endpoint


def recv_notice(sock, deadline):
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        return sock.recv(4096).decode()
    except socket.timeout:
        raise Failure("no notice on NOTIFY_SOCKET within %.0f s" % TIMEOUT)


def echo_client(port):
    c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    data = bytes(range(256))
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
    got = b""
    while True:
        chunk = c.recv(65536)
        if not chunk:
            break
        got += chunk
    c.close()
    check(got == b"hello\r\n" + data, "echo through the inherited listener: %r" % got[:40])


def notify_and_listen_fds(opts, tmp):
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    proc, endpoint = start_netcore(opts, tmp, listener, True, {"NOTIFY_SOCKET": notify_path})
    listener.close()  # netcore holds it now
    echo = None
    try:
        deadline = time.monotonic() + TIMEOUT
        state = recv_notice(notify, deadline)
        check(state == "READY=1", "first notice %r, expected READY=1" % state)
        r = subprocess.run([opts.netcore, "--ping", "--endpoint", endpoint, "--timeout-ms", "1000"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        check(r.returncode == 0, "READY=1 came before the endpoint answered: %s" % r.stderr)
        # Reconnection off: this echo is to exit with netcore (a unit is stopped by
        # systemd with it anyway: PartOf=netcore.service).
        echo = subprocess.Popen([opts.echo, "--fd", "3", "--endpoint", endpoint],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, NETCORE_RECONNECT="0"))
        line = echo.stdout.readline()
        check(line.startswith("echo server listening on {\"address\":\"127.0.0.1\",\"port\":%d}"
                              % port), "echo on fd 3 printed %r (listener port %d); stderr: %s"
              % (line, port, "" if line else echo.stderr.read()))
        echo_client(port)
        echo_client(port)
        proc.send_signal(signal.SIGTERM)
        state = recv_notice(notify, time.monotonic() + TIMEOUT)
        check(state == "STOPPING=1", "notice after SIGTERM %r, expected STOPPING=1" % state)
        check(proc.wait(TIMEOUT) == 0, "netcore exit status %s" % proc.returncode)
        check(echo.wait(TIMEOUT) == 0, "echo exit status %s after netcore's shutdown: %s"
              % (echo.returncode, echo.stderr.read()))
    finally:
        for p in (echo, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        notify.close()


def recv_from(sock, deadline):
    """One notice and the pid that sent it (SCM_CREDENTIALS, as systemd reads it)."""
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        msg, anc, _, _ = sock.recvmsg(4096, socket.CMSG_SPACE(12))
    except socket.timeout:
        raise Failure("no notice on NOTIFY_SOCKET within %.0f s" % TIMEOUT)
    pid = None
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
            pid = struct.unpack("iII", data[:12])[0]
    return msg.decode(), pid


def exec_reload(opts):
    """The unit's ExecReload= command line."""
    with open(os.path.join(opts.units, "netcore.service")) as f:
        for line in f:
            if line.startswith("ExecReload="):
                return shlex.split(line[len("ExecReload="):])
    raise Failure("netcore.service has no ExecReload=")


def reload_takeover(opts, tmp):
    """systemctl reload: the unit's ExecReload (with $MAINPID) upgrades netcore
    in place. The old main process says MAINPID=<new pid> and exits 0 (never
    STOPPING=1, which would stop the unit), the new one says READY=1 (after
    MAINPID, so NotifyAccess=main takes it), and a connection made before the
    reload goes on; the new one stops on SIGTERM as a main process does."""
    ctypes.CDLL(None).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER: the new netcore is ours to reap
    notify_path = os.path.join(tmp, "notify")
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(notify_path)
    notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    endpoint = "ipc://%s/nc.sock" % tmp
    env = dict(os.environ, NOTIFY_SOCKET=notify_path)
    env.pop("NETCORE_ENDPOINT", None)
    proc = subprocess.Popen([opts.netcore, "--bind", endpoint, "--log-level", "warn",
                             "--handoff-ms", "10000"], env=env)
    echo = None
    new_pid = None
    try:
        deadline = time.monotonic() + TIMEOUT
        state, pid = recv_from(notify, deadline)
        check(state == "READY=1" and pid == proc.pid, "first notice %r from %s" % (state, pid))
        echo = subprocess.Popen([opts.echo, "--endpoint", endpoint, "--port", "0", "--host",
                                 "127.0.0.1", "--service", "echo1"],
                                stdout=subprocess.PIPE, text=True)
        line = echo.stdout.readline()
        check('"port":' in line, "echo printed %r" % line)
        port = int(line.split('"port":')[1].rstrip("}\n"))
        c = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        got = b""
        while len(got) < 7:
            got += c.recv(7 - len(got))
        c.sendall(b"before")
        got = b""
        while len(got) < 6:
            got += c.recv(6 - len(got))
        check(got == b"before", "echo before the reload: %r" % got)

        cmd = [a.replace("$MAINPID", str(proc.pid)) for a in exec_reload(opts)]
        r = subprocess.run(cmd, timeout=TIMEOUT)
        check(r.returncode == 0, "%s: status %d" % (" ".join(cmd), r.returncode))
        state, pid = recv_from(notify, time.monotonic() + TIMEOUT)
        check(state.startswith("MAINPID=") and pid == proc.pid,
              "first notice after the reload %r from pid %s (old %d)" % (state, pid, proc.pid))
        new_pid = int(state[len("MAINPID="):])
        check(new_pid != proc.pid, "MAINPID names the old process")
        state, pid = recv_from(notify, time.monotonic() + TIMEOUT)
        check(state == "READY=1" and pid == new_pid,
              "notice %r from pid %s, expected READY=1 from %d" % (state, pid, new_pid))
        check(proc.wait(TIMEOUT) == 0, "the old netcore exited with %s" % proc.returncode)
        c.sendall(b"after")
        got = b""
        while len(got) < 5:
            got += c.recv(5 - len(got))
        check(got == b"after", "echo after the reload: %r" % got)
        c.close()
        os.kill(new_pid, signal.SIGTERM)
        state, pid = recv_from(notify, time.monotonic() + TIMEOUT)
        check(state == "STOPPING=1" and pid == new_pid, "notice %r from %s after SIGTERM"
              % (state, pid))
        _, status = os.waitpid(new_pid, 0)
        new_pid = None
        check(os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0,
              "the new netcore ended with status 0x%x" % status)
    finally:
        for p in (echo, proc):
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
        if new_pid is not None:
            os.kill(new_pid, signal.SIGKILL)
            os.waitpid(new_pid, 0)
        notify.close()


def listen_pid_elsewhere(opts, tmp):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    proc, endpoint = start_netcore(opts, tmp, listener, False, {})
    listener.close()
    try:
        deadline = time.monotonic() + TIMEOUT
        while subprocess.run([opts.netcore, "--ping", "--endpoint", endpoint, "--timeout-ms", "500"],
                             capture_output=True).returncode != 0:
            check(time.monotonic() < deadline, "netcore did not answer")
        r = subprocess.run([opts.echo, "--fd", "3", "--endpoint", endpoint],
                           capture_output=True, text=True, timeout=TIMEOUT)
        check(r.returncode == 1 and "EBADF" in r.stderr,
              "listenFD(3) with LISTEN_PID=1: status %d, stderr %r" % (r.returncode, r.stderr))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    for a in ("--netcore", "--echo", "--units"):
        ap.add_argument(a, required=True)
    opts = ap.parse_args()
    for a in ("netcore", "echo", "units"):
        setattr(opts, a, os.path.abspath(getattr(opts, a)))
    failed = 0
    for name, fn in (("units_verify", units_verify),
                     ("notify_and_listen_fds", notify_and_listen_fds),
                     ("listen_pid_elsewhere", listen_pid_elsewhere),
                     ("reload_takeover", reload_takeover)):
        tmp = tempfile.mkdtemp(prefix="nc-systemd-")
        try:
            fn(opts, tmp)
            print("PASS %s" % name, flush=True)
        except Failure as e:
            failed += 1
            print("FAIL %s: %s" % (name, e), flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    print("%d failed" % failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
