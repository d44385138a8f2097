# SPDX-License-Identifier: Apache-2.0
"""eventlet_semantics.py: eventlet's behaviour for the orders tests/sched/eventlet_test.cpp pins.

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
