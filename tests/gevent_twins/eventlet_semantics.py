# SPDX-License-Identifier: Apache-2.0
"""eventlet_semantics.py: eventlet's behaviour for the orders tests/sched/eventlet_test.cpp and
tests/sim/serve_test.cpp pin.

Each block is the twin of the tendril test named in its comment; the output is compared with
eventlet_semantics.expected. Run with Debian's /usr/bin/python3 and python3-eventlet 0.33.
"""
import eventlet
import greenlet

log = []


def done(name):
    print(name, log)
    log.clear()


# v1: Eventlet.SpawnAfterCancelledBeforeItsTimerNeverRuns
def v1():
    gt = eventlet.spawn_after(0.01, lambda: log.append("ran"))
    gt.cancel()
    eventlet.sleep(0.05)
    try:
        gt.wait()
        log.append("wait returned")
    except greenlet.GreenletExit:
        log.append("wait raised GreenletExit")
    gt.cancel()
    log.append("cancelled twice")
v1(); done("v1")


# v2: Eventlet.CancelAfterItStartedDoesNothing
def v2():
    def f():
        log.append("started")
        eventlet.sleep(0.02)
        log.append("finished")
        return 7
    gt = eventlet.spawn_after(0.01, f)
    eventlet.sleep(0.015)
    gt.cancel()
    log.append("result %s" % gt.wait())
v2(); done("v2")


# v3: Eventlet.SpawnNRunsInSpawnOrder
def v3():
    eventlet.spawn_n(lambda: log.append("n1"))
    eventlet.spawn(lambda: log.append("s2"))
    eventlet.spawn_n(lambda x: log.append("n3 %s" % x), 5)
    eventlet.sleep(0)
v3(); done("v3")


# v4: Eventlet.SpawnAfterZeroOrNegativeStartsLikeSpawn
def v4():
    eventlet.spawn_after(-1, lambda: log.append("negative ran"))
    eventlet.spawn_after(0, lambda: log.append("zero ran"))
    eventlet.spawn(lambda: log.append("plain spawn"))
    eventlet.sleep(0)
    eventlet.sleep(0.01)
v4(); done("v4")


def client(port, msg, name):
    c = eventlet.connect(('127.0.0.1', port))
    c.sendall(msg)
    log.append("%s got %s" % (name, c.recv(100).decode()))
    log.append("%s then %r" % (name, c.recv(100)))
    c.close()


# w1: Serve.HandlesEachConnectionClosesItAndStopsOnStopServe
def w1():
    server = eventlet.listen(('127.0.0.1', 0))
    port = server.getsockname()[1]

    def handle(conn, addr):
        data = conn.recv(100)
        log.append("handle %s" % data.decode())
        conn.sendall(b"re " + data)
        if data == b"stop":
            raise eventlet.StopServe()

    def clients():
        client(port, b"a", "client a")
        client(port, b"b", "client b")
        c = eventlet.connect(('127.0.0.1', port))
        c.sendall(b"stop")
        c.recv(100)
        c.close()
    g = eventlet.spawn(clients)
    eventlet.serve(server, handle)
    log.append("serve returned")
    g.wait()
w1(); done("w1")


# w2: Serve.AHandlersExceptionEndsServeWithIt
def w2():
    server = eventlet.listen(('127.0.0.1', 0))
    port = server.getsockname()[1]

    def handle(conn, addr):
        data = conn.recv(100)
        log.append("handle %s" % data.decode())
        raise ValueError("bad request " + data.decode())

    def clients():
        c = eventlet.connect(('127.0.0.1', port))
        c.sendall(b"x")
        log.append("client then %r" % c.recv(100))
        c.close()
    g = eventlet.spawn(clients)
    try:
        eventlet.serve(server, handle)
    except ValueError as e:
        log.append("serve raised %s" % e)
    g.wait()
w2(); done("w2")


# w3: Serve.ConcurrencyBoundsTheHandlersAtOnce
def w3(concurrency):
    server = eventlet.listen(('127.0.0.1', 0))
    port = server.getsockname()[1]

    def handle(conn, addr):
        data = conn.recv(100).decode()
        if data == "stop":
            raise eventlet.StopServe()
        log.append("start %s" % data)
        eventlet.sleep(0.05)
        log.append("end %s" % data)
        conn.sendall(b"ok")

    def one(name):
        c = eventlet.connect(('127.0.0.1', port))
        c.sendall(name.encode())
        c.recv(100)
        c.close()

    def clients():
        a = eventlet.spawn(one, "a")
        eventlet.sleep(0.01)
        b = eventlet.spawn(one, "b")
        a.wait()
        b.wait()
        c = eventlet.connect(('127.0.0.1', port))
        c.sendall(b"stop")
        c.close()
    g = eventlet.spawn(clients)
    eventlet.serve(server, handle, concurrency)
    g.wait()
w3(1); done("w3 concurrency 1")
w3(2); done("w3 concurrency 2")
