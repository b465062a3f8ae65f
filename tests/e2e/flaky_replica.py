#!/usr/bin/env python3
"""A replica program for the process backend (--replica-bin) that dies on
cue, for back-off tests.  Takes ringlb-replica's --id, --listen or --listen-fd, --parent.

    FLAKY_LOG=PATH         one line per start appended here: "<time> <id>"
    FLAKY_DIE_AFTER_MS=N   exit N ms after answering the first /heartbeat
    FLAKY_DIE_TIMES=K      ... only in the first K starts (counted in
                           FLAKY_LOG); later starts stay up
    FLAKY_HEARTBEAT_MS=N   answer /heartbeat after N ms
    FLAKY_EXIT_AT_START_MS=N  exit N ms after starting, never listening
    FLAKY_NEVER_LISTEN=1   never listen (a start that hangs)
"""
import argparse
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--id", required=True)
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--listen")
    where.add_argument("--listen-fd", type=int)
    ap.add_argument("--parent", type=int, default=0)
    a = ap.parse_args()
    # die with ringlb, as ringlb-replica does
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if a.parent and os.getppid() != a.parent:
        sys.exit(1)
    log = os.environ.get("FLAKY_LOG")
    starts = 0
    if log:
        with open(log, "a") as f:
            f.write("%.3f %s\n" % (time.time(), a.id))
        with open(log) as f:
            starts = sum(1 for _ in f)
    die_ms = int(os.environ.get("FLAKY_DIE_AFTER_MS", "0"))
    die_times = int(os.environ.get("FLAKY_DIE_TIMES", "1000000"))
    dying = die_ms > 0 and starts <= die_times
    if os.environ.get("FLAKY_EXIT_AT_START_MS"):
        time.sleep(int(os.environ["FLAKY_EXIT_AT_START_MS"]) / 1000.0)
        sys.exit(3)
    if os.environ.get("FLAKY_NEVER_LISTEN"):
        while True:
            time.sleep(60)
    hb_delay = int(os.environ.get("FLAKY_HEARTBEAT_MS", "0")) / 1000.0

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def do_GET(self):
            if hb_delay and self.path.startswith("/heartbeat"):
                time.sleep(hb_delay)
            body = b'{"message": "Hello from %s", "status": "successful"}' % \
                a.id.encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            if dying and self.path.startswith("/heartbeat"):
                threading.Timer(die_ms / 1000.0, lambda: os._exit(0)).start()

    if a.listen:
        host, port = a.listen.rsplit(":", 1)
        ThreadingHTTPServer((host, int(port)), H).serve_forever()
    server = ThreadingHTTPServer(("127.0.0.1", 0), H, bind_and_activate=False)
    server.socket.close()
    server.socket = socket.socket(fileno=a.listen_fd)
    server.serve_forever()


if __name__ == "__main__":
    main()
