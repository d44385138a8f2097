# SPDX-License-Identifier: Apache-2.0
"""gevent_ssl_echo.py PORT DIR: the gevent side of bench/tls_report.py: gevent's StreamServer with
its ssl module (keyfile DIR/key.pem, certfile DIR/cert.pem) echoing what each TLS connection
sends until it closes. Listens on 127.0.0.1:PORT (0 picks a free port), prints "serving on
127.0.0.1:PORT" and runs until SIGTERM or SIGINT. Run with Debian's /usr/bin/python3."""
import signal
import sys

import gevent
from gevent.server import StreamServer


def echo(sock, _address):
    try:
        while True:
            data = sock.recv(16384)
            if not data:
                return
            sock.sendall(data)
    except OSError:
        return  # a client that closes without close_notify


def main():
    if len(sys.argv) != 3 or not sys.argv[1].isdigit() or int(sys.argv[1]) > 65535:
        sys.exit("usage: gevent_ssl_echo.py PORT DIR   (0-65535; 0 picks a free port)")
    server = StreamServer(("127.0.0.1", int(sys.argv[1])), echo, backlog=1024,
                          keyfile=sys.argv[2] + "/key.pem", certfile=sys.argv[2] + "/cert.pem")
    server.start()
    gevent.signal_handler(signal.SIGTERM, server.stop)
    gevent.signal_handler(signal.SIGINT, server.stop)
    print("serving on 127.0.0.1:%d" % server.server_port, flush=True)
    server.serve_forever()


main()
