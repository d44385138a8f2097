# SPDX-License-Identifier: Apache-2.0
"""primitives_semantics.py: gevent's behaviour for the orders tests/sched/primitives_test.cpp pins.

Each block is the twin of the tendril test named in its comment; the output is compared with
primitives_semantics.expected. Run with Debian's /usr/bin/python3 and python3-gevent 22.10.
"""
import gevent
from gevent.event import Event, AsyncResult
from gevent.lock import Semaphore, BoundedSemaphore, RLock
from gevent import Timeout

log = []


def done(name):
    print(name, log)
    log.clear()


# e1: Primitives.EventSetWakesWaitersInOrderWithoutSwitching
def e1():
    ev = Event()
    gs = [gevent.spawn(lambda i=i: (ev.wait(), log.append("w%d" % i))) for i in range(3)]
    gevent.sleep(0)
    ev.set()
    log.append("after set")
    gevent.joinall(gs)
e1(); done("e1")


# e2: Primitives.EventSetThenClearStillWakesWaiters
def e2():
    ev = Event()
    gs = [gevent.spawn(lambda i=i: log.append("w%d %s" % (i, ev.wait()))) for i in range(2)]
    gevent.sleep(0)
    ev.set()
    ev.clear()
    gevent.joinall(gs)
    log.append("is_set %s" % ev.is_set())
e2(); done("e2")


# e3: Primitives.EventWaitDuringWakeupQueuesBehindEarlierWaiters
def e3():
    ev = Event()
    gs = [gevent.spawn(lambda i=i: (ev.wait(), log.append("w%d" % i))) for i in range(2)]
    gevent.sleep(0)
    ev.set()
    ev.wait()
    log.append("main")
    gevent.joinall(gs)
e3(); done("e3")


# e4: Primitives.EventWaitTimeout
def e4():
    ev = Event()
    start = gevent.get_hub().loop.now()
    r = ev.wait(timeout=0.5)
    log.append("%s" % r)
e4(); done("e4")


# a1: Primitives.AsyncResultWakesGettersInOrder
def a1():
    ar = AsyncResult()
    gs = [gevent.spawn(lambda i=i: log.append("g%d %s" % (i, ar.get()))) for i in range(2)]
    gevent.sleep(0)
    ar.set(42)
    log.append("after set")
    gevent.joinall(gs)
    bad = AsyncResult()
    bad.set_exception(ValueError("no"))
    try:
        bad.get()
    except ValueError as e:
        log.append("raised %s" % e)
    log.append("ready %s successful %s" % (bad.ready(), bad.successful()))
a1(); done("a1")


# t1: Primitives.TimeoutInterruptsBlockedCall
def t1():
    try:
        with Timeout(1):
            gevent.sleep(2)
    except Timeout:
        log.append("timeout")
t1(); done("t1")


# t2: Primitives.TimeoutZeroDoesNotInterruptSleepZero
def t2():
    with Timeout(0):
        gevent.sleep(0)
        log.append("slept")
    log.append("left")
t2(); done("t2")


# t3: Primitives.SleepEndingWithTimeoutWins
def t3():
    with Timeout(1):
        gevent.sleep(1)
        log.append("woke")
    log.append("left")
t3(); done("t3")


# t4: Primitives.NestedTimeoutsIdentifyTheirSource
def t4():
    outer = Timeout(1)
    outer.start()
    try:
        inner = Timeout(2)
        inner.start()
        try:
            gevent.sleep(3)
        except Timeout as t:
            log.append("inner caught outer" if t is outer else "inner caught inner")
            raise
        finally:
            inner.cancel()
    except Timeout as t:
        log.append("outer caught %s" % ("outer" if t is outer else "other"))
    finally:
        outer.cancel()
t4(); done("t4")


# t5: Primitives.WithTimeoutFallback
def t5():
    log.append(gevent.with_timeout(1, gevent.sleep, 2, timeout_value="fallback"))
    log.append(gevent.with_timeout(2, lambda: "fast"))
t5(); done("t5")


# s1: Primitives.SemaphoreWaitersAcquireInOrder
def s1():
    sem = Semaphore(1)
    sem.acquire()
    def w(i):
        sem.acquire()
        log.append("w%d got it" % i)
        gevent.sleep(0)
        sem.release()
    gs = [gevent.spawn(w, i) for i in range(3)]
    gevent.sleep(0)
    log.append("releasing")
    sem.release()
    gevent.joinall(gs)
    log.append("counter %d" % sem.counter)
s1(); done("s1")


# s2: Primitives.SemaphoreBargingReleaserKeepsPermit
def s2():
    sem = Semaphore(1)
    sem.acquire()
    g = gevent.spawn(lambda: (sem.acquire(), log.append("waiter got it")))
    gevent.sleep(0)
    sem.release()
    log.append("reacquired %s" % sem.acquire(blocking=False))
    gevent.sleep(0)
    log.append("waiter dead %s" % g.dead)
    sem.release()
    g.join()
s2(); done("s2")


# s3: Primitives.BoundedSemaphoreOverReleaseIsError
def s3():
    b = BoundedSemaphore(1)
    try:
        b.release()
    except ValueError:
        log.append("ValueError")
s3(); done("s3")


# r1: Primitives.RLockIsReentrantAndOwnerChecked
def r1():
    lock = RLock()
    lock.acquire()
    lock.acquire()
    def other():
        try:
            lock.release()
        except RuntimeError:
            log.append("non-owner release refused")
        log.append("other acquires %s" % lock.acquire(timeout=0.1))
    gevent.spawn(other).join()
    lock.release()
    lock.release()
    g = gevent.spawn(lambda: log.append("other acquires %s" % lock.acquire(timeout=0.1)))
    g.join()
r1(); done("r1")


# n1: Primitives.UnlinkingTheLastLinkCancelsTheQueuedNotification
def n1():
    gevent.sleep(0)  # the hub exists (without one, gevent notifies at once)
    ev = Event()
    cb = lambda e: log.append("cb1")
    ev.rawlink(cb)
    ev.set()
    ev.unlink(cb)
    gevent.spawn(lambda: log.append("g"))
    ev.rawlink(lambda e: log.append("cb2"))
    gevent.sleep(0)
    gevent.sleep(0)
n1(); done("n1")


# n2: Primitives.AKilledLastWaiterCancelsTheQueuedNotification
def n2():
    ev = Event()

    def w():
        try:
            ev.wait()
        except gevent.GreenletExit:
            log.append("w killed")
            ev.rawlink(lambda e: log.append("cb2"))
    wg = gevent.spawn(w)
    gevent.sleep(0)
    wg.kill(block=False)
    ev.set()
    gevent.spawn(lambda: log.append("g"))
    gevent.sleep(0)
    log.append("main")
    gevent.sleep(0)
    gevent.sleep(0)
n2(); done("n2")


# t_notify: DirectSwitch.NotificationsAreTheSameStepForStepWithoutThem (its first two parts: the
# order tendril keeps whether a notification runs on the hub's stack or greenlet to greenlet).
def t_notify():
    ev = Event()

    def w(i):
        ev.wait()
        log.append("w%d woke" % i)
        if i == 0:
            ev.wait()  # set, its notification running: behind the others
            log.append("w0 again")
        elif i == 1:
            ev.clear()
            log.append("w1 cleared")
        elif i == 2:
            ev.wait()  # cleared: after the last waiter this notification wakes
            log.append("w2 again")
        elif i == 3:
            ev.set()  # the notification is running: the next one is queued at its end
            log.append("w3 set")
        log.append("w%d done" % i)
    gs = [gevent.spawn(w, i) for i in range(3)]
    gevent.sleep(0)
    ev.rawlink(lambda e: log.append("rawlink"))
    gs.append(gevent.spawn(w, 3))
    gevent.sleep(0)
    ev.set()
    log.append("main set")
    gevent.joinall(gs)

    sem = Semaphore(0)

    def s(i):
        sem.acquire()
        log.append("s%d got" % i)
        if i == 0:
            sem.release()
            sem.release()
            log.append("s0 released 2")
        gevent.sleep(0)
        log.append("s%d done" % i)
    gs = [gevent.spawn(s, i) for i in range(4)]
    gevent.sleep(0)
    sem.release()
    log.append("main released")
    gevent.sleep(0)
    log.append("main: s3 dead %s" % gs[3].dead)
    sem.release()
    gevent.joinall(gs)
    log.append("counter %d" % sem.counter)

    kill_ev = Event()

    def a():
        kill_ev.wait()
        log.append("a woke")

    def b():
        try:
            kill_ev.wait()
            log.append("b woke")
        except gevent.GreenletExit:
            log.append("b killed")
            raise

    def c():
        kill_ev.wait()
        log.append("c woke")
    gs = [gevent.spawn(a), gevent.spawn(b), gevent.spawn(c)]
    gevent.sleep(0)
    kill_ev.set()
    gs[1].kill(block=False)  # queued behind the notification, which wakes b first
    gevent.joinall(gs)
t_notify(); done("t_notify")


# t_sem_ping_pong: DirectSwitch.ASemaphorePingPongGoesFromGreenletToGreenlet.
def t_sem_ping_pong():
    to_b, to_main = Semaphore(0), Semaphore(0)

    def b():
        for i in range(4):
            to_b.acquire()
            log.append("b got %d" % i)
            to_main.release()
    g = gevent.spawn(b)
    for i in range(4):
        to_b.release()
        to_main.acquire()
        log.append("main got %d" % i)
    g.join()
t_sem_ping_pong(); done("t_sem_ping_pong")
