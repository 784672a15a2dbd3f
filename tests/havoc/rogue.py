#!/usr/bin/python3
"""rogue: a raw-protocol echo handler that misbehaves on purpose, for the havoc test.

usage: rogue.py --endpoint E --mode MODE --after BYTES [--seed N]

Speaks netcore's protocol directly (pyzmq DEALER + the generated netcore_pb2, found
through NETCORE_PB2_DIR like the Python library does), listens on 127.0.0.1 port 0,
prints "echo server listening on {json}" like the echo actors, then serves every
connection as the seed's echo does ("hello\\r\\n", then every byte back, End after
Ended). Once it has echoed BYTES bytes in all it misbehaves, according to MODE:

  bye       sends Bye and exits 0: netcore must destroy its sockets at once
  midbatch  half of the time sends the first frames of a CommandBatch of Writes and
            closes its socket (linger 0) before the last frame; otherwise sends a
            whole batch whose last Write has no payload frame (ERR_PAYLOAD) and
            then vanishes without Bye. netcore must drop it when its lease ends
  deaf      stops reading its events but keeps pinging, so its lease never ends:
            netcore must stop reading its sockets (credit, HWM) without bloating,
            until the havoc driver kills the rogue
  flip      inverts one echoed byte and goes on as an echo: only for the havoc
            driver's self-check, which must report it as corrupt

Every mode also sends one envelope of random bytes at a random moment (EPROTO
comes back; nothing else may change). Standard library + python3-zmq +
python3-protobuf only; run with /usr/bin/python3.
"""

import argparse
import json
import os
import random
import sys
import time

import zmq

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "..", "client", "python"))
from netcore_net._proto import pb  # noqa: E402

GREETING = b"hello\r\n"


class Rogue:
    def __init__(self, endpoint, mode, after, rng):
        self.mode, self.after, self.rng = mode, after, rng
        self.ctx = zmq.Context()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.connect(endpoint)
        self.echoed = 0
        self.junk_at = rng.randrange(0, max(1, after))
        self.junk_sent = False
        self.lease = 1.0
        self.last_send = time.monotonic()
        self.server_id = 0

    # ------------------------------------------------------------ sending
    def send(self, cmds, payloads):
        """Sends cmds (one, or several as a CommandBatch) with their payload frames."""
        if len(cmds) == 1:
            env = cmds[0]
        else:
            env = pb.Command(batch=pb.CommandBatch(commands=cmds))
        self.sock.send_multipart([env.SerializeToString()] + payloads)
        self.last_send = time.monotonic()

    def recv_event(self, timeout_ms):
        """The events of one message with their payload frames, or [] after timeout."""
        if not self.sock.poll(timeout_ms):
            return []
        frames = self.sock.recv_multipart()
        ev = pb.Event.FromString(frames[0])
        if ev.WhichOneof("event") == "batch":
            evs = list(ev.batch.events)
        else:
            evs = [ev]
        payloads = frames[1:]
        out = []
        for e in evs:
            kind = e.WhichOneof("event")
            out.append((kind, e, payloads.pop(0) if kind == "data" else None))
        return out

    # ------------------------------------------------------------ running
    def start(self):
        self.send([pb.Command(hello=pb.Hello(version=1, name="rogue-" + self.mode,
                                             batch_events=self.rng.random() < 0.5))], [])
        welcome = self.expect("welcome")
        self.lease = welcome.lease_ms / 1000.0
        self.server_id = (welcome.id_prefix << 32) | 1
        self.send([pb.Command(listen=pb.Listen(server_id=self.server_id,
                                               tcp=pb.TcpEndpoint(host="127.0.0.1", port=0)))], [])
        listening = self.expect("listening")
        addr = {"address": listening.address.address, "port": listening.address.port}
        print("echo server listening on " + json.dumps(addr, separators=(",", ":")), flush=True)

    def expect(self, want):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for kind, e, _ in self.recv_event(1000):
                if kind == want:
                    return getattr(e, kind)
                if kind == "error" or kind == "server_error":
                    sys.exit("rogue: %s: %s" % (getattr(e, kind).code, getattr(e, kind).message))
        sys.exit("rogue: no %s from netcore" % want)

    def run(self):
        while True:
            cmds, payloads = [], []
            for kind, e, payload in self.recv_event(int(self.lease * 300)):
                if kind == "connection":
                    sid = e.connection.socket_id
                    cmds.append(pb.Command(write=pb.Write(socket_id=sid)))
                    payloads.append(GREETING)
                elif kind == "data":
                    sid = e.data.socket_id
                    cmds.append(pb.Command(write=pb.Write(socket_id=sid)))
                    payloads.append(payload)
                    cmds.append(pb.Command(credit=pb.Credit(socket_id=sid, bytes=len(payload))))
                    self.echoed += len(payload)
                elif kind == "ended":
                    cmds.append(pb.Command(end=pb.End(socket_id=e.ended.socket_id)))
            if not self.junk_sent and self.echoed >= self.junk_at:
                self.junk_sent = True
                # 0x07 is field 0 with wire type 7: never a valid Command, always EPROTO.
                self.sock.send(b"\x07" + self.rng.randbytes(self.rng.randrange(0, 64)))
            if self.echoed >= self.after and cmds:
                self.misbehave(cmds, payloads)
            if cmds:
                self.send(cmds, payloads)
            elif time.monotonic() - self.last_send > self.lease / 3:
                self.send([pb.Command(ping=pb.Ping(nonce=1))], [])

    def misbehave(self, cmds, payloads):
        if self.mode == "bye":
            self.send(cmds, payloads)
            self.send([pb.Command(bye=pb.Bye())], [])
            self.vanish()
        if self.mode == "flip":
            if payloads[-1]:
                last = payloads[-1]
                payloads[-1] = last[:-1] + bytes([last[-1] ^ 0xFF])
                self.mode = "flipped"
            return
        if self.mode == "flipped":
            return
        if self.mode == "midbatch":
            batch = pb.Command(batch=pb.CommandBatch(commands=cmds)).SerializeToString()
            if self.rng.random() < 0.5 and payloads:
                frames = [batch] + payloads
                cut = self.rng.randrange(1, len(frames))
                for f in frames[:cut]:
                    self.sock.send(f, zmq.SNDMORE)
            else:
                # The last Write of the batch goes without its frame: ERR_PAYLOAD for it.
                self.sock.send_multipart([batch] + payloads[:-1])
            self.vanish()
        # deaf: answer this last message, then never read again; keep the lease alive.
        self.send(cmds, payloads)
        while True:
            time.sleep(self.lease / 4)
            self.send([pb.Command(ping=pb.Ping(nonce=2))], [])

    def vanish(self):
        """Leaves like a crash: no Bye (unless sent already), queued frames dropped."""
        self.sock.close(linger=0)
        os._exit(0)


def main():
    p = argparse.ArgumentParser(prog="rogue")
    p.add_argument("--endpoint", required=True)
    p.add_argument("--mode", choices=("bye", "midbatch", "deaf", "flip"), required=True)
    p.add_argument("--after", type=int, default=65536)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    r = Rogue(a.endpoint, a.mode, a.after, random.Random(a.seed))
    r.start()
    r.run()


if __name__ == "__main__":
    main()
