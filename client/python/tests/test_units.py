#!/usr/bin/python3
"""Unit tests of netcore_net's pure parts: isIP, encodings, errors, EventEmitter,
the CommandBatch envelope.

usage: test_units.py [--netcore PATH]   (the path is accepted and unused)
"""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import netcore_net as net  # noqa: E402
from netcore_net import codec  # noqa: E402
from netcore_net import handler as _handler  # noqa: E402
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
