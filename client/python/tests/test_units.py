#!/usr/bin/python3
"""Unit tests of netcore_net's pure parts: isIP, encodings, errors, EventEmitter,
the CommandBatch envelope, the hand-made wire format of _wire.py against protobuf's.

usage: test_units.py [--netcore PATH]   (the path is accepted and unused)
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import netcore_net as net  # noqa: E402
from netcore_net import codec  # noqa: E402
from netcore_net import handler as _handler  # noqa: E402
from netcore_net import _wire  # noqa: E402
from netcore_net._proto import pb  # noqa: E402

IP4 = ["127.0.0.1"]
IP6 = """0000:0000:0000:0000:0000:0000:0000:0000 1050:0:0:0:5:600:300c:326b
2001:252:0:1::2008:6 2001:dead:beef:1::2008:6 2001:: 2001:dead:: 2001:dead:beef::
2001:dead:beef:1:: ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::2001:252:1:2008:6
::2001:252:1:1.1.1.1 ::2001:252:1:255.255.255.255 ::1 :: ::ffff:127.0.0.1
fe80::1%eth0""".split()
NOT_IP = ["x127.0.0.1", "example.com", "0000:0000:0000:0000:0000:0000:0000:0000::0000",
          ":2001:252:0:1::2008:6:", ":2001:252:0:1::2008:6", "2001:252:0:1::2008:6:",
          "2001:252::1::2008:6", "::2001:252:1:255.255.255.255.76", "::anything",
          "0000:0000:0000:0000:0000:0000:12345:0000", "0", "", None, "127.000.000.001",
          "01.2.3.4", "1.2.3", "256.0.0.0", " 127.0.0.1", "0x7f.0.0.1", "1.2.3.4.5"]


class TestCommandBatch(unittest.TestCase):
    """Commands sent in one loop turn leave as one CommandBatch that protobuf
    parses back into the same commands, with the Write payloads in order."""

    def capture(self):
        nc = net.Netcore("ipc:///nonexistent", name="unit")
        sent = []
        nc._send_raw = sent.append
        return nc, sent

    def test_batch_envelope_parses(self):
        nc, sent = self.capture()
        big = b"y" * 300  # a command longer than one varint byte
        cmds = []
        for i in range(3):
            c = pb.Command()
            c.write.socket_id = 1000 + i
            cmds.append(c)
        credit = pb.Command()
        credit.credit.socket_id = 7
        credit.credit.bytes = 65536
        nc.send(cmds[0], b"a")
        nc.send(credit)
        nc.send(cmds[1], big)
        nc.send(cmds[2], b"")
        self.assertEqual(sent, [])  # nothing leaves before the end of the turn
        nc._flush_batch()
        self.assertEqual(len(sent), 1)
        frames = sent[0]
        self.assertEqual(frames[1:], [b"a", big, b""])
        env = pb.Command()
        env.ParseFromString(frames[0])
        self.assertEqual(env.WhichOneof("command"), "batch")
        got = env.batch.commands
        self.assertEqual([c.WhichOneof("command") for c in got], ["write", "credit", "write", "write"])
        self.assertEqual([c.ref for c in got], [1, 2, 3, 4])
        self.assertEqual(got[1].credit.bytes, 65536)
        self.assertEqual(got[3].write.socket_id, 1002)

    def test_single_command_goes_alone_and_end_with_data_after_batch(self):
        nc, sent = self.capture()
        w = pb.Command()
        w.write.socket_id = 5
        nc.send(w, b"x")
        end = pb.Command()
        end.end.socket_id = 5
        nc.send(end, b"last")  # a payload on End: not allowed in a batch
        self.assertEqual(len(sent), 2)
        first = pb.Command()
        first.ParseFromString(sent[0][0])
        self.assertEqual(first.WhichOneof("command"), "write")
        self.assertEqual(sent[0][1:], [b"x"])
        second = pb.Command()
        second.ParseFromString(sent[1][0])
        self.assertEqual(second.WhichOneof("command"), "end")
        self.assertEqual(sent[1][1:], [b"last"])

    def test_varint(self):
        self.assertEqual(_handler._varint(0), b"\x00")
        self.assertEqual(_handler._varint(127), b"\x7f")
        self.assertEqual(_handler._varint(300), b"\xac\x02")


class TestWire(unittest.TestCase):
    """_wire.py reads and writes exactly what protobuf does, and leaves to
    protobuf whatever it does not read exactly."""

    IDS = [0, 1, 127, 128, 300, (1 << 32) | 1, (7 << 32) | 123456, (0xFFFFFFFF << 32) | 0xFFFFFFFF]

    def test_write_and_credit_encode_as_protobuf(self):
        for sid in self.IDS:
            for ref in (1, 127, 128, 99999):
                for ack_now in (False, True):
                    c = pb.Command()
                    c.ref = ref
                    c.write.SetInParent()
                    c.write.socket_id = sid
                    c.write.ack_now = ack_now
                    body = _wire.write_body(_wire.sid_field(sid), ack_now)
                    self.assertEqual(_wire.command(ref, _wire.TAG_WRITE, body),
                                     c.SerializeToString())
                for n in (0, 1, 127, 128, 65536, 1 << 31):
                    c = pb.Command()
                    c.ref = ref
                    c.credit.SetInParent()
                    c.credit.socket_id = sid
                    c.credit.bytes = n
                    body = _wire.credit_body(_wire.sid_field(sid), n)
                    self.assertEqual(_wire.command(ref, _wire.TAG_CREDIT, body),
                                     c.SerializeToString())

    def test_send_encoded_batches_as_send(self):
        nc = net.Netcore("ipc:///nonexistent", name="unit")
        sent = []
        nc._send_raw = sent.append
        sid = (3 << 32) | 9
        nc.send_encoded(_wire.TAG_WRITE, _wire.write_body(_wire.sid_field(sid), True), b"abc")
        c = pb.Command()
        c.end.socket_id = sid
        nc.send(c)
        nc.send_encoded(_wire.TAG_CREDIT, _wire.credit_body(_wire.sid_field(sid), 3))
        nc._flush_batch()
        env = pb.Command.FromString(sent[0][0])
        got = env.batch.commands
        self.assertEqual([x.WhichOneof("command") for x in got], ["write", "end", "credit"])
        self.assertEqual([x.ref for x in got], [1, 2, 3])
        self.assertEqual((got[0].write.socket_id, got[0].write.ack_now), (sid, True))
        self.assertEqual((got[2].credit.socket_id, got[2].credit.bytes), (sid, 3))
        self.assertEqual(sent[0][1:], [b"abc"])
        # Alone, a hand-encoded command is the Command itself.
        nc.send_encoded(_wire.TAG_CREDIT, _wire.credit_body(_wire.sid_field(sid), 300))
        nc._flush_batch()
        one = pb.Command.FromString(sent[1][0])
        self.assertEqual((one.ref, one.credit.socket_id, one.credit.bytes), (4, sid, 300))

    def test_batch_size_rule_is_one_for_send_and_send_encoded(self):
        # PROTOCOL.md 1.1: a Write goes in a batch of at most 255 commands
        # (room left for its Credit) and 64 KiB of payload; others in 256.
        sid = (3 << 32) | 9
        wbody = _wire.write_body(_wire.sid_field(sid), False)
        cbody = _wire.credit_body(_wire.sid_field(sid), 1)

        def send_write(nc, payload):
            c = pb.Command()
            c.write.socket_id = sid
            nc.send(c, payload)

        def send_end(nc):
            c = pb.Command()
            c.end.socket_id = sid
            nc.send(c)

        ways = {
            "send": (send_write, send_end),
            "send_encoded": (lambda nc, p: nc.send_encoded(_wire.TAG_WRITE, wbody, p),
                             lambda nc: nc.send_encoded(_wire.TAG_CREDIT, cbody)),
        }
        for way, (write, other) in ways.items():
            for fill, last, sizes in ((254, write, [255]), (255, write, [255, 1]),
                                      (255, other, [256]), (256, other, [256, 1])):
                with self.subTest(way=way, fill=fill, last=last):
                    nc = net.Netcore("ipc:///nonexistent", name="unit")
                    sent = []
                    nc._send_raw = sent.append
                    for _ in range(fill):
                        other(nc)
                    if last is write:
                        write(nc, b"w")
                    else:
                        last(nc)
                    nc._flush_batch()
                    self.assertEqual([len(pb.Command.FromString(m[0]).batch.commands) or 1
                                      for m in sent], sizes)
            with self.subTest(way=way, payload="full"):
                nc = net.Netcore("ipc:///nonexistent", name="unit")
                sent = []
                nc._send_raw = sent.append
                write(nc, b"x" * (64 * 1024))
                other(nc)  # not a Write: the payload bytes do not push it out
                write(nc, b"y")
                nc._flush_batch()
                self.assertEqual([len(pb.Command.FromString(m[0]).batch.commands) or 1
                                  for m in sent], [2, 1])

    def batch(self, fill):
        ev = pb.Event()
        for f in fill:
            f(ev.batch.events.add())
        return ev.SerializeToString()

    def test_batch_decodes_as_protobuf(self):
        def data(sid, seq, ack):
            def f(e):
                e.seq = seq
                e.data.socket_id = sid
                if ack:
                    e.ack.socket_id = sid
                    e.ack.writes = ack
                    e.ack.bytes = 7 * ack
                    e.ack.bytes_written = 1 << 40
                    e.ack.queued_bytes = 300
            return f

        def write_ack(sid, seq):
            def f(e):
                e.seq = seq
                e.write_ack.socket_id = sid
                e.write_ack.writes = 2
                e.write_ack.bytes = 9
                e.write_ack.bytes_written = 130
            return f

        def closed(sid):
            def f(e):
                e.seq = 5
                e.closed.socket_id = sid
                e.closed.had_error = True
            return f
        fills = []
        for i, sid in enumerate(self.IDS):
            fills += [data(sid, i * 100, i % 3), write_ack(sid, 1 << 33), closed(sid)]
        raw = self.batch(fills)
        got = _wire.decode_batch(raw)
        self.assertIsNotNone(got)
        want = pb.Event.FromString(raw).batch.events
        self.assertEqual(len(got), len(want))
        for (kind, seq, sid, ack), w in zip(got, want):
            which = w.WhichOneof("event")
            if which == "data":
                self.assertEqual((kind, seq, _wire.sid_of(sid)), (_wire.EV_DATA, w.seq, w.data.socket_id))
                self.assertEqual(sid, _wire.sid_field(w.data.socket_id))
                if w.HasField("ack"):
                    self.assertEqual((ack.writes, ack.bytes, ack.bytes_written, ack.queued_bytes),
                                     (w.ack.writes, w.ack.bytes, w.ack.bytes_written,
                                      w.ack.queued_bytes))
                else:
                    self.assertIsNone(ack)
            elif which == "write_ack":
                self.assertEqual((kind, seq, sid), (_wire.EV_WRITE_ACK, w.seq, w.write_ack.socket_id))
                self.assertEqual((ack.writes, ack.bytes, ack.bytes_written),
                                 (w.write_ack.writes, w.write_ack.bytes, w.write_ack.bytes_written))
            else:
                self.assertEqual(kind, 0)
                self.assertEqual(pb.Event.FromString(seq), w)

    def test_what_it_does_not_read_is_left_to_protobuf(self):
        # Not a batch, a truncated batch, a field after the batch: None.
        single = pb.Event()
        single.data.socket_id = 5
        self.assertIsNone(_wire.decode_batch(single.SerializeToString()))
        raw = self.batch([lambda e: setattr(e, "seq", 3) or e.data.SetInParent()])
        self.assertIsNotNone(_wire.decode_batch(raw))
        self.assertIsNone(_wire.decode_batch(raw[:-1]))
        self.assertIsNone(_wire.decode_batch(raw + b"\x08\x01"))
        # A Data event with a field this module does not know: passed raw.
        ev = pb.Event()
        e = ev.batch.events.add()
        e.data.socket_id = 5
        inner = e.SerializeToString() + b"\x98\x06\x01"  # an unknown field 99
        body = b"\x0a" + _wire.varint(len(inner)) + inner
        raw = b"\x92\x03" + _wire.varint(len(body)) + body
        got = _wire.decode_batch(raw)
        self.assertEqual(got, [(0, inner, 0, None)])
        self.assertEqual(pb.Event.FromString(inner).data.socket_id, 5)


class TestIsIP(unittest.TestCase):
    def test_ip_table(self):
        for s in IP4:
            self.assertEqual(net.is_ip(s), 4, s)
            self.assertTrue(net.is_ipv4(s))
            self.assertFalse(net.is_ipv6(s))
        for s in IP6:
            self.assertEqual(net.is_ip(s), 6, s)
            self.assertTrue(net.is_ipv6(s))
            self.assertFalse(net.is_ipv4(s))
        for s in NOT_IP:
            self.assertEqual(net.is_ip(s), 0, repr(s))
            self.assertFalse(net.is_ipv4(s))
            self.assertFalse(net.is_ipv6(s))
        self.assertEqual(net.isIP("::1"), 6)


class TestEncodings(unittest.TestCase):
    def test_encode(self):
        self.assertEqual(codec.encode("h\u00e9"), b"h\xc3\xa9")
        self.assertEqual(codec.encode("h\u00e9", "latin1"), b"h\xe9")
        self.assertEqual(codec.encode("aGk=", "base64"), b"hi")
        self.assertEqual(codec.encode("aGk", "base64"), b"hi")
        self.assertEqual(codec.encode("6869", "hex"), b"hi")
        self.assertEqual(codec.encode(bytearray(b"\x00\xff")), b"\x00\xff")
        with self.assertRaises(ValueError):
            codec.encode("x", "klingon")
        with self.assertRaises(TypeError):
            codec.encode(42)

    def test_utf8_split_characters(self):
        data = "€ and 𝄞".encode("utf-8")
        for cut in range(1, len(data)):
            d = codec.Decoder("utf8")
            out = d.write(data[:cut]) + d.write(data[cut:]) + d.end()
            self.assertEqual(out, "€ and 𝄞", cut)
        d = codec.Decoder("utf-8")
        self.assertEqual(d.write(b"\xe2\x82"), "")
        self.assertEqual(d.write(b"\xac"), "€")

    def test_base64_groups(self):
        d = codec.Decoder("base64")
        out = d.write(b"he") + d.write(b"llo") + d.end()
        self.assertEqual(out, "aGVsbG8=")

    def test_ascii_and_hex(self):
        self.assertEqual(codec.Decoder("ascii").write(b"a\xe1"), "aa")
        self.assertEqual(codec.Decoder("hex").write(b"\x01\xab"), "01ab")
        self.assertEqual(codec.Decoder("binary").write(b"\xe9"), "\u00e9")


class TestErrors(unittest.TestCase):
    def test_codes_from_the_table(self):
        e = net.NetcoreError("ECONNREFUSED", syscall="connect", address="127.0.0.1", port=1)
        self.assertEqual(e.code, "ECONNREFUSED")
        self.assertEqual(e.errno, -111)
        self.assertIn("connect ECONNREFUSED 127.0.0.1:1", str(e))
        self.assertEqual(net.NetcoreError("ERR_NETCORE_GONE").errno, -4031)
        self.assertEqual(net.NetcoreError("ENOTFOUND").errno, -4001)


class TestEmitter(unittest.TestCase):
    def test_order_once_off(self):
        e = net.EventEmitter()
        seen = []
        e.on("x", lambda v: seen.append(("a", v)))
        e.once("x", lambda v: seen.append(("b", v)))
        f = lambda v: seen.append(("c", v))  # noqa: E731
        e.on("x", f)
        e.emit("x", 1)
        e.off("x", f)
        e.emit("x", 2)
        self.assertEqual(seen, [("a", 1), ("b", 1), ("c", 1), ("a", 2)])
        self.assertFalse(e.emit("y"))

    def test_unhandled_error_raises(self):
        e = net.EventEmitter()
        with self.assertRaises(net.NetcoreError):
            e.emit("error", net.NetcoreError("EPIPE"))


if __name__ == "__main__":
    if "--netcore" in sys.argv:
        i = sys.argv.index("--netcore")
        del sys.argv[i:i + 2]
    unittest.main(verbosity=2)
