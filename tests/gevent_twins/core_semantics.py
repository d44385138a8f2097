# SPDX-License-Identifier: Apache-2.0
"""core_semantics.py: gevent's own behaviour for every order tests/sched pins.

Each block below is the gevent twin of a tendril test (named in its comment); the output is compared
with core_semantics.expected, so the orders tendril asserts are checked against real gevent on the
same machine. Run with Debian's /usr/bin/python3 and python3-gevent 22.10.
"""
import sys

import gevent
from gevent import Greenlet

# Uncaught exceptions in t5 are reported by gevent on stderr; keep stdout for the comparison.
gevent.get_hub().exception_stream = sys.stderr

log=[]
# t1: Greenlet.SpawnLaterZeroRunsAfterPlainSpawn
def t1():
    a=gevent.spawn_later(0, lambda: log.append("later(0)"))
    b=gevent.spawn(lambda: log.append("spawn"))
    gevent.joinall([a,b])
t1(); print("t1", log); log.clear()
# t2: Greenlet.TimerWokenGreenletRunsBeforeNextTimerAndItsCallbacksAfter
def t2():
    def a():
        gevent.sleep(1); log.append("a woke"); gevent.spawn(lambda: log.append("spawned by a"))
    def b():
        gevent.sleep(1); log.append("b woke")
    ga=gevent.spawn(a); gb=gevent.spawn(b); gevent.sleep(2); gevent.joinall([ga,gb])
t2(); print("t2", log); log.clear()
# t3: Kill.StartedGreenletUnwindsAndKillerResumesBeforeLinks
def t3():
    def victim():
        try: gevent.sleep(3600)
        finally: log.append("destructor")
    g=gevent.spawn(victim); g.link(lambda g: log.append("link")); gevent.sleep(0); g.kill(); log.append("kill returned"); gevent.sleep(0)
t3(); print("t3", log); log.clear()
# t4: Greenlet.LinksAndJoinersRunInRegistrationOrder
def t4():
    target=gevent.spawn(lambda: gevent.sleep(1))
    target.link(lambda g: log.append("link1"))
    def joiner():
        target.join(); log.append("joiner woke")
    j=gevent.spawn(joiner); gevent.sleep(0)
    target.link_value(lambda g: log.append("link_value"))
    target.link_exception(lambda g: log.append("link_exception"))
    target.link(lambda g: log.append("link2"))
    j.join()
t4(); print("t4", log); log.clear()
# t5: Greenlet.FailureIsReportedBeforeLinksAndJoiners (the report goes to stderr first)
def t5():
    def bad(): raise ValueError("x")
    g=gevent.spawn(bad); g.link(lambda g: log.append("link")); g.join(); log.append("joined")
t5(); print("t5", log); log.clear()
# t6: Kill.NeverStartedGreenletNeverRunsButLinksFire
def t6():
    g=gevent.spawn(lambda: log.append("ran")); g.link(lambda g: log.append("link")); g.kill(); log.append("kill returned %s %s %r"%(g.dead, g.successful(), g.value)); gevent.sleep(0)
t6(); print("t6", log); log.clear()
# t7: Greenlet.StartedReadyStates
g=Greenlet(lambda: gevent.sleep(0.01)); print("t7", g.started, end=" "); g.start(); print(g.started, end=" "); g.join(); print(g.started, g.ready())
# t8: Kill.KillallInListOrder
def t8():
    def w(i):
        try: gevent.sleep(3600)
        finally: log.append("g%d"%i)
    gs=[gevent.spawn(w,i) for i in range(3)]; gevent.sleep(0); gs.append(gevent.spawn(lambda: log.append("never ran")))
    gevent.killall(gs); log.append("killall returned")
t8(); print("t8", log); log.clear()
# t9: Kill.NonBlockingKillQueuesDelivery
def t9():
    def w():
        try: gevent.sleep(1)
        finally: log.append("unwound")
    g=gevent.spawn(w); gevent.sleep(0); g.kill(block=False); log.append("after kill"); g.join()
t9(); print("t9", log); log.clear()
# t_exc1: ExceptionState.RethrowAfterBlockingInCatch (each greenlet handles its own exception)
def t_exc1():
    def body(name):
        try:
            try:
                raise RuntimeError(name + "'s error")
            except Exception:
                gevent.sleep(0)
                log.append(name + " sees " + str(sys.exc_info()[1]))
                gevent.sleep(0.001)
                raise
        except RuntimeError as e:
            log.append(name + " rethrew " + str(e))
    a=gevent.spawn(body, "a"); b=gevent.spawn(body, "b"); gevent.joinall([a,b])
t_exc1(); print("t_exc1", log); log.clear()
# t_exc2: ExceptionState.NestedHandlersStayNested
def t_exc2():
    def nested():
        try:
            raise RuntimeError("outer")
        except Exception:
            try:
                raise ValueError("inner")
            except Exception:
                gevent.sleep(0.001)
                log.append("inner handler: " + str(sys.exc_info()[1]))
            gevent.sleep(0.001)
            log.append("outer handler: " + str(sys.exc_info()[1]))
        log.append("after: still handling" if sys.exc_info()[0] else "after: none")
    g=gevent.spawn(nested)
    try:
        raise IndexError("main's")
    except Exception:
        g.join()
        log.append("main: " + str(sys.exc_info()[1]))
    log.append("main after: still handling" if sys.exc_info()[0] else "main after: none")
t_exc2(); print("t_exc2", log); log.clear()
# t_clock1: LibevHub.EqualSleepsWakeInArmingOrder
def t_clock1():
    def sleeper(i):
        gevent.sleep(0.04); log.append(i)
    gevent.joinall([gevent.spawn(sleeper, i) for i in range(1, 9)])
t_clock1(); print("t_clock1", log); log.clear()
# t_clock2: LibevHub.OverdueTimeoutFiresAtTheNextWait and SleepAfterBusyWorkCountsFromNow
def t_clock2():
    import time
    def busy(s):
        until = time.monotonic() + s
        while time.monotonic() < until: pass
    try:
        with gevent.Timeout(0.05):
            busy(0.08); gevent.sleep(0.01); log.append("slept")
    except gevent.Timeout:
        log.append("timeout")
    gevent.sleep(0); busy(0.08)
    start = time.monotonic(); gevent.sleep(0.1)
    log.append("slept at least 100 ms" if time.monotonic() - start >= 0.1 else "woke early")
t_clock2(); print("t_clock2", log); log.clear()
# t_select: Conformance.SelectYieldsOnceEvenWhenReady
def t_select():
    import gevent.select, gevent.socket
    a, b = gevent.socket.socketpair()
    b.sendall(b"x"); gevent.sleep(0.01)
    other = gevent.spawn(lambda: log.append("other ran"))
    r, w, x = gevent.select.select([a], [], [], 5)
    log.append("select returned %d" % len(r))
    again = gevent.spawn(lambda: log.append("other ran again"))
    r, w, x = gevent.select.select([], [], [], 0)
    log.append("select(0) returned %d" % len(r))
    gevent.joinall([other, again]); a.close(); b.close()
t_select(); print("t_select", log); log.clear()
# t_rename: Greenlet.RenameAndKillNowait
def t_rename():
    def worker():
        try: gevent.sleep(3600)
        except gevent.GreenletExit:
            log.append("victim unwinds"); raise
    g = gevent.spawn(worker); g.name = "renamed"; log.append(g.name)
    gevent.sleep(0); g.kill(block=False); log.append("kill_nowait returned"); g.join()
    log.append("killed" if g.dead and isinstance(g.value, gevent.GreenletExit) else "alive")
t_rename(); print("t_rename", log); log.clear()
# t_link1: Link.LinkRunsInItsOwnGreenletAndMayBlock (link spawns a greenlet; rawlink runs on the hub)
def t_link1():
    def a():
        log.append("a runs"); gevent.sleep(0); log.append("a ends"); return 1
    g = gevent.spawn(a)
    def l1(src):
        log.append("l1 start"); gevent.sleep(0.05); log.append("l1 end")
    def l3(src):
        log.append("l3 start"); raise ValueError("boom")
    g.link(l1); g.rawlink(lambda src: log.append("raw l2")); g.link(l3)
    g.link_value(lambda src: log.append("lv in its own greenlet %s" % (gevent.getcurrent() is not g)))
    gevent.sleep(0)
    gevent.spawn(lambda: log.append("other runs"))
    g.join(); log.append("joined")
    gevent.sleep(0.2)
t_link1(); print("t_link1", log); log.clear()
# t_task1: Link.UnstartedTaskFromFunction (Greenlet(f, *args), then start / start_later / kill)
def t_task1():
    def f(x):
        log.append("ran %d" % x); return x * 2
    g = gevent.Greenlet(f, 21)
    gevent.sleep(0); log.append("started %s" % g.started)
    g.start(); g.join(); log.append("value %d" % g.get())
    h = gevent.Greenlet(f, 5); h.start_later(1); gevent.sleep(0.5); log.append("not yet")
    h.join(); log.append("later value %d" % h.value)
    k = gevent.Greenlet(f, 7); k.kill(); log.append("killed unstarted %s %s" % (k.dead, type(k.value).__name__))
t_task1(); print("t_task1", log); log.clear()
# t_exitval: Link.KilledGreenletsValueIsItsGreenletExit
def t_exitval():
    class MyExit(gevent.GreenletExit):
        pass
    g = gevent.spawn(gevent.sleep, 1); gevent.sleep(0); g.kill(MyExit())
    log.append("%s %s %s" % (type(g.value).__name__, g.successful(), g.exception))
    g = gevent.spawn(gevent.sleep, 1); gevent.sleep(0); g.kill()
    log.append("%s %s %s" % (type(g.value).__name__, g.successful(), g.exception))
t_exitval(); print("t_exitval", log); log.clear()
# t_joinall1: Link.JoinallReturnsTheFinishedInGeventsOrder
def t_joinall1():
    def f(i, d):
        gevent.sleep(d); return i
    first = gevent.spawn(f, 9, 0); first.join()
    gs = [gevent.spawn(f, 0, 0.3), gevent.spawn(f, 2, 0.2), first, gevent.spawn(f, 1, 0.1)]
    log.append("done %s" % [x.value for x in gevent.joinall(gs, timeout=0.25)])
    log.append("rest %s" % [x.value for x in gevent.joinall(gs)])
t_joinall1(); print("t_joinall1", log); log.clear()
# t_joinall2: Link.JoinallRaiseErrorRethrowsTheFirstFailureAsItHappens
def t_joinall2():
    def f(i, d):
        gevent.sleep(d); return i
    def boom(d):
        gevent.sleep(d); raise ValueError("boom %d ms" % (d * 1000))
    gs = [gevent.spawn(f, 0, 0.3), gevent.spawn(boom, 0.1), gevent.spawn(boom, 0.2)]
    try:
        gevent.joinall(gs, raise_error=True)
    except ValueError as e:
        log.append("raised %s, dead %s" % (e, [g.dead for g in gs]))
    gevent.joinall(gs)
t_joinall2(); print("t_joinall2", log); log.clear()
# t_sysexit: Link.SystemExitInAGreenletReachesMainAtItsBlockingCall
def t_sysexit():
    def bad():
        log.append("bad exits"); raise SystemExit(3)
    def other():
        log.append("other runs"); gevent.sleep(0); log.append("other again")
    g = gevent.spawn(bad); gevent.spawn(other)
    g.link(lambda s: log.append("link fired"))
    try:
        gevent.sleep(1); log.append("slept")
    except SystemExit as e:
        log.append("main got SystemExit %s successful=%s" % (e.code, g.successful()))
    g2 = gevent.spawn(bad)
    try:
        g2.join(); log.append("joined")
    except SystemExit as e:
        log.append("main got SystemExit %s in join" % e.code)
    gevent.sleep(0)
t_sysexit(); print("t_sysexit", log); log.clear()
# t_selectfd: FdWait.SelectFdsOverAPipe (gevent's select over plain file descriptors)
def t_selectfd():
    import os
    from gevent.select import select
    r, w = os.pipe()
    def writer():
        log.append("writer runs"); os.write(w, b"x")
    gevent.spawn(writer)
    rl, wl, _ = select([r], [w], [], 1)
    log.append("first %d %d" % (len(rl), len(wl)))
    rl, wl, _ = select([r], [], [], 1)
    log.append("second %s" % (rl == [r]))
    os.read(r, 1)
    rl, wl, _ = select([r], [], [], 0.05)
    log.append("timeout %d" % len(rl))
    os.close(r); os.close(w)
t_selectfd(); print("t_selectfd", log); log.clear()
