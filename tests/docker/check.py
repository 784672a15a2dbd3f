#!/usr/bin/python3
"""Clients for the docker test: real TCP connections to the echoes the compose stack
publishes on 127.0.0.1.

  check.py echo PORT...            greeting, all 256 byte values, half-close, and 50
                                   concurrent connections, on each port
  check.py drain PORT... -- CMD    opens a connection to each port, sends 64 KiB
                                   without reading, runs CMD (the stop), then reads:
                                   every connection must get the greeting and every
                                   byte back, then a clean EOF (no reset)
  check.py keep PORT... -- CMD     opens 20 connections to each port, echoes a message
                                   on each, runs CMD (an upgrade in place), then echoes
                                   another on each same connection: every byte back
                                   exactly once, no EOF or reset on the way
Exit status 0 when everything holds; one line per failure on stdout.
"""

import os
import socket
import subprocess
import sys
import threading

TIMEOUT = 30.0
GREETING = b"hello\r\n"


class Failure(Exception):
    pass


def connect(port):
    return socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)


def read_exact(c, n, what):
    got = b""
    while len(got) < n:
        chunk = c.recv(min(65536, n - len(got)))
        if not chunk:
            raise Failure("%s: EOF after %d of %d bytes" % (what, len(got), n))
        got += chunk
    return got


def read_to_eof(c, what):
    got = b""
    while True:
        try:
            chunk = c.recv(65536)
        except ConnectionResetError:
            raise Failure("%s: reset after %d bytes instead of a clean EOF" % (what, len(got)))
        if not chunk:
            return got
        got += chunk


def one_echo(port, data, what):
    c = connect(port)
    try:
        if read_exact(c, len(GREETING), what) != GREETING:
            raise Failure("%s: no greeting" % what)
        c.sendall(data)
        c.shutdown(socket.SHUT_WR)  # half-close: the echo must still send everything back
        got = read_to_eof(c, what)
        if got != data:
            raise Failure("%s: %d bytes back for %d sent, or different bytes"
                          % (what, len(got), len(data)))
    finally:
        c.close()


def echo(port):
    one_echo(port, bytes(range(256)), "port %d bytes256" % port)
    errors = []

    def worker(i):
        try:
            one_echo(port, ("connection %d " % i).encode() * 100, "port %d concurrent %d" % (port, i))
        except (Failure, OSError) as e:
            errors.append(str(e))
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise Failure("%d of 50 concurrent connections failed, first: %s" % (len(errors), errors[0]))


def drain(ports, cmd):
    data = os.urandom(64 * 1024)
    conns = []
    for port in ports:
        c = connect(port)
        if read_exact(c, len(GREETING), "port %d" % port) != GREETING:
            raise Failure("port %d: no greeting" % port)
        conns.append((port, c))
    senders = [threading.Thread(target=c.sendall, args=(data,)) for _, c in conns]
    for t in senders:
        t.start()
    r = subprocess.run(cmd)
    if r.returncode != 0:
        raise Failure("%s: status %d" % (" ".join(cmd), r.returncode))
    failures = []
    for port, c in conns:
        try:
            got = read_to_eof(c, "port %d after the stop" % port)
            if got != data:
                n = next((i for i, (a, b) in enumerate(zip(got, data)) if a != b), min(len(got), len(data)))
                failures.append("port %d: %d of %d queued bytes came back (first difference at %d)"
                                % (port, len(got), len(data), n))
        except (Failure, OSError) as e:
            failures.append(str(e))
        finally:
            c.close()
    for t in senders:
        t.join(TIMEOUT)
    if failures:
        raise Failure("; ".join(failures))


def keep(ports, cmd):
    conns = []
    for port in ports:
        for i in range(20):
            c = connect(port)
            if read_exact(c, len(GREETING), "port %d connection %d" % (port, i)) != GREETING:
                raise Failure("port %d connection %d: no greeting" % (port, i))
            conns.append(("port %d connection %d" % (port, i), c))
    try:
        for what, c in conns:
            msg = ("before %s|" % what).encode()
            c.sendall(msg)
            if read_exact(c, len(msg), what) != msg:
                raise Failure("%s: a different echo before the upgrade" % what)
        r = subprocess.run(cmd)
        if r.returncode != 0:
            raise Failure("%s: status %d" % (" ".join(cmd), r.returncode))
        for what, c in conns:
            msg = ("after %s|" % what).encode() * 50
            c.sendall(msg)
            if read_exact(c, len(msg), what + " after the upgrade") != msg:
                raise Failure("%s: a different echo after the upgrade" % what)
    finally:
        for _, c in conns:
            c.close()


def main():
    args = sys.argv[1:]
    try:
        if args and args[0] == "echo":
            for port in args[1:]:
                echo(int(port))
        elif args and args[0] == "drain" and "--" in args:
            i = args.index("--")
            drain([int(p) for p in args[1:i]], args[i + 1:])
        elif args and args[0] == "keep" and "--" in args:
            i = args.index("--")
            keep([int(p) for p in args[1:i]], args[i + 1:])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except (Failure, OSError) as e:
        print("FAIL %s: %s" % (args[0], e))
        return 1
    ports = args[1:args.index("--")] if "--" in args else args[1:]
    print("PASS %s %s" % (args[0], " ".join(ports)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
