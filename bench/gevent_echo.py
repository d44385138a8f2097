# SPDX-License-Identifier: Apache-2.0
"""gevent_echo.py PORT: the gevent side of bench/net.sh's echo benchmark: gevent's StreamServer
echoing what each connection sends until it closes. Listens on 127.0.0.1:PORT (0 picks a free
port), prints "serving on 127.0.0.1:PORT" and runs until SIGTERM or SIGINT.
Run with Debian's /usr/bin/python3 and python3-gevent."""
import signal
import sys

import gevent
from gevent.server import StreamServer


def echo(sock, _address):
    while True:
        data = sock.recv(4096)
        if not data:
            return
        sock.sendall(data)


def main():
    if len(sys.argv) != 2 or not sys.argv[1].isdigit() or int(sys.argv[1]) > 65535:
        sys.exit("usage: gevent_echo.py PORT   (0-65535; 0 picks a free port)")
    server = StreamServer(("127.0.0.1", int(sys.argv[1])), echo, backlog=1024)
    server.start()
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    print("serving on 127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()


main()
