#!/usr/bin/python3
"""freeze_io_thread.py PID: stops the ZeroMQ I/O thread of netcore PID alone
(ptrace; the rest of netcore runs on), prints "stopped", and lets it go on
when its stdin ends (or when this process dies: the kernel detaches).

Tests use it to make a netcore read nothing from its handlers while the
handlers' links look up: what they send then waits in the kernel (the
takeover tests of commands in flight, PROTOCOL.md 16.1)."""
import ctypes
import os
import sys

PTRACE_SEIZE, PTRACE_INTERRUPT, PTRACE_DETACH = 0x4206, 0x4207, 17
WALL = 0x40000000

libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
libc.ptrace.restype = ctypes.c_long


def ptrace(req, tid):
    if libc.ptrace(req, tid, None, None) != 0:
        err = ctypes.get_errno()
        sys.exit("freeze_io_thread: ptrace %#x of thread %d: %s" % (req, tid, os.strerror(err)))


def main():
    pid = int(sys.argv[1])
    tid = None
    for t in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
            if f.read().startswith("ZMQbg/IO/"):
                tid = int(t)
    if tid is None:
        sys.exit("freeze_io_thread: no ZeroMQ I/O thread in process %d" % pid)
    ptrace(PTRACE_SEIZE, tid)
    ptrace(PTRACE_INTERRUPT, tid)
    os.waitpid(tid, WALL)
    print("stopped", flush=True)
    sys.stdin.read()
    ptrace(PTRACE_DETACH, tid)


if __name__ == "__main__":
    main()
