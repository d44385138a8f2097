# SPDX-License-Identifier: Apache-2.0
"""gevent_http.py PORT: the seed's hello-world HTTP/1.0 server in gevent, the twin of
examples/hello_http.cpp for bench/net.sh: read the request head, sleep 0.1 s cooperatively,
answer "Hello World" and close. Listens on 127.0.0.1:PORT (0 picks a free port) with the same
backlog as tendril's listen() (1024), prints "serving on http://127.0.0.1:PORT/" and runs until
SIGTERM or SIGINT. bench/net.sh raises the open-files limit for it. Run with Debian's
/usr/bin/python3 and python3-gevent."""
import signal
import sys

import gevent
from gevent.server import StreamServer

RESPONSE = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
            b"Hello World\n")


def hello(sock, _address):
    sock.settimeout(10)
    request = b""
    while b"\r\n\r\n" not in request and len(request) < 65536:
        part = sock.recv(4096)
        if not part:
            return
        request += part
    gevent.sleep(0.1)
    sock.sendall(RESPONSE)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) > 65535:
        sys.exit("usage: gevent_http.py PORT   (0-65535; 0 picks a free port)")
    server = StreamServer(("127.0.0.1", int(sys.argv[1])), hello, backlog=1024)
    server.start()
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    print("serving on http://127.0.0.1:%d/" % server.server_port, flush=True)
    server.serve_forever()


main()
