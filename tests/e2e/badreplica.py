"""A replica that misbehaves on purpose, over raw sockets (tests only).

    /heartbeat        200, so that ringlb admits it
    /ok               200 with a small JSON body
    /close-early      Content-Length 100000, 1000 bytes, then close
    /short-stall      Content-Length 1000, 10 bytes, then silence
    /too-long         Content-Length 5, 50 bytes of body
    /bad-status       a status line that is not HTTP
    /bad-header       a header line without a colon
    /no-answer        reads the request and closes
    /stall            reads the request and never answers
    /huge-headers     200 with 1 MiB of header lines
    /conn-named       200 whose Connection headers name others (X-Internal,
                      X-Other), which a proxy must not pass on; then close
"""
import argparse
import socket
import threading
import time


def read_request(conn):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return data.split(b" ", 2)[1].decode(errors="replace")


def handle(conn):
    try:
        while True:
            path = read_request(conn)
            if path is None:
                return
            path = path.split("?", 1)[0]
            if path in ("/heartbeat", "/ok"):
                body = b"" if path == "/heartbeat" else b'{"ok": true}'
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s"
                             % (len(body), body))
                continue
            if path == "/close-early":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n"
                             + b"x" * 1000)
            elif path == "/short-stall":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"
                             + b"y" * 10)
                time.sleep(5)
            elif path == "/too-long":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
                             + b"z" * 50)
            elif path == "/bad-status":
                conn.sendall(b"HELLO THERE\r\n\r\n")
            elif path == "/bad-header":
                conn.sendall(b"HTTP/1.1 200 OK\r\nthis line has no colon\r\n"
                             b"Content-Length: 2\r\n\r\nok")
            elif path == "/huge-headers":
                conn.sendall(b"HTTP/1.1 200 OK\r\n")
                for i in range(16384):
                    conn.sendall(b"X-Filler-%05d: %s\r\n" % (i, b"f" * 48))
                conn.sendall(b"Content-Length: 2\r\n\r\nok")
            elif path == "/conn-named":
                conn.sendall(b"HTTP/1.1 200 OK\r\nX-Internal: secret\r\n"
                             b"Connection: close, X-Internal\r\n"
                             b"connection: x-other\r\nX-Other: 1\r\n"
                             b"X-Public: yes\r\nContent-Length: 2\r\n\r\nok")
            elif path == "/stall":
                time.sleep(5)
            # /no-answer and everything after the cases above: close
            return
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", args.port))
    srv.listen(64)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
