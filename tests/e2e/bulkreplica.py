"""A replica for many large answers at once (tests only): one thread, an
event loop, and bounded buffers, so that a thousand connections each
fetching 50 MiB cost it little.

    /heartbeat     200, empty (so that ringlb admits it)
    /big?mb=N      N MiB of body with a Content-Length, written as the
                   connection takes it
    anything else  404
"""
import argparse
import asyncio
import socket
from urllib.parse import parse_qs, urlsplit

PIECE = b"b" * 65536


async def serve(reader, writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        # the kernel's buffers stay small too
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
    writer.transport.set_write_buffer_limits(high=65536)
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ", 2)[1].decode()
            url = urlsplit(target)
            if url.path == "/heartbeat":
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
            elif url.path == "/big":
                mb = int(parse_qs(url.query).get("mb", ["1"])[0])
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: "
                             b"application/octet-stream\r\nContent-Length: "
                             b"%d\r\n\r\n" % (mb << 20))
                for _ in range(mb * 16):
                    writer.write(PIECE)
                    await writer.drain()
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: "
                             b"0\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, IndexError,
            ValueError):
        pass
    finally:
        writer.close()


async def main(port):
    server = await asyncio.start_server(serve, "127.0.0.1", port,
                                        backlog=2048)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--name", default="bulk")
    asyncio.run(main(ap.parse_args().port))
