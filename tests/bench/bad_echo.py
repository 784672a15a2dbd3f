#!/usr/bin/python3
"""A deliberately faulty echo server: bench_smoke runs loadgen against it to prove that the
checker sees what it must (a test that cannot fail proves nothing).

    bad_echo.py flip|swap|drop
      flip: the byte at stream offset 1000 is inverted         -> corrupt bytes
      swap: the first two 64-byte blocks are echoed swapped    -> corrupt bytes (reordering)
      drop: the byte at stream offset 1000 is lost             -> corrupt bytes, failed conn
Greets with hello\\r\\n like the seed and prints the actors' "listening on" line.
"""
import asyncio
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else "flip"


async def handle(reader, writer):
    writer.write(b"hello\r\n")
    seen = 0
    held = b""
    while True:
        data = await reader.read(65536)
        if not data:
            break
        if MODE == "swap" and seen < 128:
            held += data
            if len(held) < 128:
                continue
            data = held[64:128] + held[:64] + held[128:]
            held = b""
        elif MODE in ("flip", "drop") and seen <= 1000 < seen + len(data):
            i = 1000 - seen
            if MODE == "flip":
                data = data[:i] + bytes([data[i] ^ 0xFF]) + data[i + 1:]
            else:
                seen += 1
                data = data[:i] + data[i + 1:]
        seen += len(data)
        writer.write(data)
        await writer.drain()
    writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print('echo server listening on {"address":"127.0.0.1","port":%d}' % port, flush=True)
    await server.serve_forever()


asyncio.run(main())
