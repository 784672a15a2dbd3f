#!/usr/bin/python3
"""Writes the seed corpus of the fuzzers (tests/fuzz/corpus/) and netcore.dict.

Seeds are real messages, built with the protobuf module generated from
proto/netcore.proto (the same one the Python library loads):
  corpus/cmd_decode/    one Command of every kind as libnc and the Python library
                        send them, CommandBatches, nested batches; one of them
                        nests 4,400 deep (issue 9, item 1: a stack overflow in
                        protobuf-c until the decoder rejects nesting)
  corpus/event_decode/  one Event of every kind as netcore sends them, EventBatches
                        (and a deeply nested one)
  corpus/dispatch/      programs for fuzz_dispatch.c (see its header comment)
Run it again after changing the protocol: /usr/bin/python3 tests/fuzz/make_corpus.py
"""

import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "client", "python"))
from netcore_net import _proto  # noqa: E402

pb = _proto.load()
PREFIX = 1 << 32


def commands():
    C = pb.Command
    yield "hello", C(hello=pb.Hello(version=1, name="echo", credit_window=262144,
                                    lease_ms=10000, lazy_acks=True, batch_events=True))
    yield "hello-v2", C(hello=pb.Hello(version=2, name="future"))
    # A resume Hello (PROTOCOL.md 16.1) with the protocol 1.4 fields: options,
    # a connecting socket, servers awaiting Listening.
    yield "hello-resume", C(hello=pb.Hello(
        version=1, name="echo", resumable=True, resume_token=bytes(range(16)),
        resume_sockets=[
            pb.ResumeSocket(socket_id=PREFIX | 1, bytes_received=10, bytes_credited=4, writes_acked=2,
                            bytes_acked=9, last_seq=5, has_options=True, timeout_ms=1500,
                            no_delay=2, keep_alive=2, keep_alive_delay_ms=1000),
            pb.ResumeSocket(socket_id=PREFIX | 2, connecting=True, has_options=True, no_delay=1)],
        resume_servers=[PREFIX | 3, PREFIX | 4]))
    yield "bye", C(bye=pb.Bye())
    yield "ping", C(ref=7, ping=pb.Ping(nonce=12345678901))
    yield "listen-tcp", C(listen=pb.Listen(server_id=PREFIX | 1, tcp=pb.TcpEndpoint(
        host="127.0.0.1", port=0), allow_half_open=True, backlog=16, max_connections=3,
        group="workers"))
    yield "listen-path", C(listen=pb.Listen(server_id=PREFIX | 2, path="/tmp/echo.sock"))
    yield "listen-fd", C(listen=pb.Listen(server_id=PREFIX | 3, fd=3))
    yield "listen-badport", C(listen=pb.Listen(server_id=PREFIX | 4, tcp=pb.TcpEndpoint(
        host="::1", port=70000)))
    yield "server-pause", C(server_pause=pb.ServerPause(server_id=PREFIX | 1, msecs=1000))
    yield "server-close", C(server_close=pb.ServerClose(server_id=PREFIX | 1))
    yield "server-max", C(server_set_max_connections=pb.ServerSetMaxConnections(
        server_id=PREFIX | 1, max_connections=10))
    yield "connect-tcp", C(connect=pb.Connect(socket_id=PREFIX | 5, tcp=pb.TcpEndpoint(
        host="localhost", port=8124), allow_half_open=True))
    yield "connect-path", C(connect=pb.Connect(socket_id=PREFIX | 6, path="/tmp/echo.sock"))
    yield "write", C(write=pb.Write(socket_id=1, ack_now=True))
    yield "write-fd", C(write=pb.Write(socket_id=1, fd_socket_id=2))
    yield "end", C(end=pb.End(socket_id=1, ack_now=True))
    yield "destroy", C(destroy=pb.Destroy(socket_id=1))
    yield "pause", C(pause=pb.Pause(socket_id=1))
    yield "resume", C(resume=pb.Resume(socket_id=1))
    yield "credit", C(credit=pb.Credit(socket_id=1, bytes=65536))
    yield "credit-max", C(credit=pb.Credit(socket_id=1, bytes=4294967295))
    yield "set-timeout", C(set_timeout=pb.SetTimeout(socket_id=1, msecs=30000))
    yield "set-nodelay", C(set_no_delay=pb.SetNoDelay(socket_id=1, enable=True))
    yield "pipe", C(pipe=pb.Pipe(socket_id=1, dest_socket_id=1, high_water_mark=4096))
    yield "unpipe", C(unpipe=pb.Unpipe(socket_id=1))
    yield "set-keepalive", C(set_keep_alive=pb.SetKeepAlive(socket_id=1, enable=True,
                                                            initial_delay_ms=1000))
    yield "empty", C()
    batch = pb.CommandBatch(commands=[
        C(write=pb.Write(socket_id=1)), C(credit=pb.Credit(socket_id=1, bytes=4096)),
        C(write=pb.Write(socket_id=2, ack_now=True)), C(end=pb.End(socket_id=2)),
        C(ping=pb.Ping(nonce=1)), C(set_timeout=pb.SetTimeout(socket_id=3, msecs=5))])
    yield "batch", C(batch=batch)
    yield "batch-hello", C(batch=pb.CommandBatch(commands=[
        C(hello=pb.Hello(version=1)), C(ping=pb.Ping(nonce=2)), C(bye=pb.Bye())]))
    nested = C(ping=pb.Ping(nonce=3))
    for _ in range(3):
        nested = C(batch=pb.CommandBatch(commands=[nested, C(write=pb.Write(socket_id=1))]))
    yield "batch-nested-3", nested


def deep_command(depth):
    """A Command nesting `batch` depth levels, built from the inside out (the
    Python library would recurse to serialise it)."""
    inner = pb.Command(ping=pb.Ping(nonce=1)).SerializeToString()
    for _ in range(depth):
        batch = b"\x0a" + varint(len(inner)) + inner      # CommandBatch.commands
        inner = b"\x92\x03" + varint(len(batch)) + batch  # Command.batch (field 50)
    return inner


def varint(n):
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7f) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def events():
    E = pb.Event
    a4 = pb.Address(family=pb.FAMILY_IPV4, address="127.0.0.1", port=8124)
    a6 = pb.Address(family=pb.FAMILY_IPV6, address="::1", port=57366)
    au = pb.Address(family=pb.FAMILY_UNIX, address="/tmp/echo.sock")
    ack = pb.WriteAck(socket_id=1, writes=2, bytes=12, bytes_written=12)
    yield "welcome", E(welcome=pb.Welcome(version=1, instance_id="3036b3b587c5107db656d3d1d81115ec",
                                          id_prefix=1, credit_window=262144, lease_ms=10000,
                                          max_frame=16777216, max_write_queue=16777216,
                                          server_version="0.1.0"))
    yield "welcome-resumed", E(welcome=pb.Welcome(
        version=1, instance_id="3036b3b587c5107db656d3d1d81115ec", id_prefix=1, minor_version=4,
        session_token=bytes(range(16)), resumed=True,
        resumed_sockets=[pb.ResumedSocket(socket_id=PREFIX | 1, writes=3)],
        resumed_servers=[PREFIX | 3]))
    yield "error", E(error=pb.Error(code="EBADF", message="no socket with id 9", ref=4,
                                    command="write", socket_id=9))
    yield "pong", E(pong=pb.Pong(nonce=99))
    yield "listening", E(seq=1, listening=pb.Listening(server_id=PREFIX | 1, address=a4))
    yield "server-error", E(seq=1, server_error=pb.ServerError(server_id=PREFIX | 1,
                                                               code="EADDRINUSE", message="in use"))
    yield "server-closed", E(seq=2, server_closed=pb.ServerClosed(server_id=PREFIX | 1))
    yield "connection", E(seq=1, connection=pb.Connection(server_id=PREFIX | 1, socket_id=1,
                                                          local=a4, remote=a6, allow_half_open=True,
                                                          server_connections=1))
    yield "connected", E(seq=1, connected=pb.Connected(socket_id=PREFIX | 5, local=au, remote=au))
    yield "data-ack", E(seq=3, ack=ack, data=pb.Data(socket_id=1))
    yield "ended", E(seq=5, ended=pb.Ended(socket_id=1))
    yield "write-ack", E(seq=2, write_ack=ack)
    yield "timeout", E(seq=4, timeout=pb.Timeout(socket_id=1))
    yield "socket-error", E(seq=6, socket_error=pb.SocketError(socket_id=1, code="ECONNRESET",
                                                               message="reset by peer"))
    yield "closed", E(seq=7, closed=pb.Closed(socket_id=1, had_error=True, bytes_read=5,
                                              bytes_written=12))
    yield "fd", E(seq=3, fd=pb.Fd(socket_id=1, new_socket_id=2, local=au, remote=au))
    yield "shutdown", E(shutdown=pb.Shutdown(reason="SIGTERM"))
    yield "unpiped", E(seq=6, unpiped=pb.Unpiped(socket_id=1, dest_socket_id=2, reason=2, bytes=70000,
                                                 bytes_read=70005, bytes_written=9, dest_ended=True))
    yield "batch", E(batch=pb.EventBatch(events=[
        E(seq=3, data=pb.Data(socket_id=1)), E(seq=1, data=pb.Data(socket_id=2)),
        E(seq=4, ack=ack, ended=pb.Ended(socket_id=1)),
        E(seq=5, closed=pb.Closed(socket_id=1))]))
    yield "batch-nested", E(batch=pb.EventBatch(events=[
        E(batch=pb.EventBatch(events=[E(pong=pb.Pong(nonce=1))])), E(pong=pb.Pong(nonce=2))]))


def dispatch_programs():
    """Byte programs for fuzz_dispatch.c. Ops: 0 hello, 1 command, 2 batch,
    3 raw, 4 sync, 5 bye, 6 wait, 7 big write; the handler is (op >> 3) % 3."""
    def op(what, handler=0):
        return bytes([what | (handler << 3)])

    def cmd(kind, v=0, sel=0, ep=0):
        # what gen_cmd reads: the kind byte, 4 value bytes, then an id selector
        # (not for Ping and Bye) and an endpoint byte (Listen and Connect)
        out = bytes([kind]) + struct.pack("<I", v)
        if kind % 17 not in (0, 16):
            out += bytes([sel])
        if kind % 17 in (1, 5):
            out += bytes([ep])
        return out

    hello = op(0) + b"\x01"                    # batch_events
    hello_plain = op(0) + b"\x00"
    listen = op(1) + cmd(1, 0, 2, 0) + b"\x00"  # new id, 127.0.0.1:0
    sync = op(4)
    connect = op(1) + cmd(5, 0, 2, 0) + b"\x00"  # new id, to a port netcore listens on
    write = op(1) + cmd(6, 0x2000) + b"\x00"
    progs = {
        "before-hello": op(1) + cmd(0, 5) + b"\x00" + op(2) + b"\x03" + cmd(0) + cmd(9) + cmd(12) + b"\x00",
        "hello-ping": hello + op(1) + cmd(0, 42) + b"\x00" + sync,
        "listen-connect-write": hello + listen + sync + connect + sync + sync + write + sync
                                + op(7) + b"\x00" + op(6) + b"\x0f" + sync,
        "two-handlers": hello + op(0, 1) + b"\x02" + listen + sync + op(1, 1) + cmd(5, 0, 2, 0)
                        + b"\x00" + op(4, 1) + op(4, 0) + op(1, 1) + cmd(9, 0, 3) + b"\x00" + sync,
        "batch-frames": hello_plain + listen + sync + connect + sync
                        + op(2) + b"\x04" + cmd(6, 0x300) + cmd(7, 0x300) + cmd(12, 100) + cmd(8)
                        + b"\x00" + sync + op(2) + b"\x32" + cmd(6, 0x10) + cmd(0, 1) + b"\x02" + sync,
        "raw": hello + op(3) + bytes([len(pb.Command(ping=pb.Ping(nonce=9)).SerializeToString())])
               + pb.Command(ping=pb.Ping(nonce=9)).SerializeToString() + b"\x02" + sync,
        "paths": hello + op(1) + cmd(1, 0, 2, 3) + b"\x00" + sync + op(1) + cmd(5, 0, 2, 3) + b"\x00"
                 + sync + op(1) + cmd(1, 0, 2, 6) + b"\x00" + sync,
        "timers": hello + listen + sync + connect + sync + op(1) + cmd(13, 5, 0) + b"\x00"
                  + op(1) + cmd(2, 10, 0) + b"\x00" + op(6) + b"\x0f" + op(6) + b"\x0f" + sync,
        "bye-rehello": hello + listen + sync + op(5) + op(1) + cmd(0) + b"\x00" + hello + sync,
    }
    return progs.items()


def dictionary():
    """Keys (field number << 3 | wire type) of every Command and Event field, as
    libFuzzer dictionary entries."""
    entries = set()
    for msg in (pb.Command, pb.Event, pb.CommandBatch, pb.EventBatch, pb.Hello, pb.Listen,
                pb.Connect, pb.TcpEndpoint, pb.Write, pb.WriteAck, pb.Address, pb.Welcome):
        for f in msg.DESCRIPTOR.fields:
            wt = 2 if f.type in (f.TYPE_MESSAGE, f.TYPE_STRING, f.TYPE_BYTES) else 0
            entries.add(varint(f.number << 3 | wt))
    return sorted(entries)


def write_dir(name, items):
    d = os.path.join(HERE, "corpus", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for fname, data in items:
        with open(os.path.join(d, fname), "wb") as f:
            f.write(data)


def main():
    cmds = [(n, c.SerializeToString()) for n, c in commands()]
    cmds.append(("batch-nested-4400", deep_command(4400)))
    write_dir("cmd_decode", cmds)
    evs = [(n, e.SerializeToString()) for n, e in events()]
    deep = pb.Event(pong=pb.Pong(nonce=1)).SerializeToString()
    for _ in range(4400):
        b = b"\x0a" + varint(len(deep)) + deep
        deep = b"\x92\x03" + varint(len(b)) + b
    evs.append(("batch-nested-4400", deep))
    write_dir("event_decode", evs)
    write_dir("dispatch", dispatch_programs())
    with open(os.path.join(HERE, "netcore.dict"), "w") as f:
        f.write("# protobuf keys of netcore.v1 fields (tests/fuzz/make_corpus.py)\n")
        for e in dictionary():
            f.write('"%s"\n' % "".join("\\x%02x" % b for b in e))


if __name__ == "__main__":
    main()
