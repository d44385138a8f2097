# SPDX-License-Identifier: Apache-2.0
"""raw_semantics.py: the greenlet library's behaviour for the orders tests/sched/raw_test.cpp pins.

Each block is the twin of the tendril test named in its comment; the output is compared with
raw_semantics.expected. Run with Debian's /usr/bin/python3 and python3-greenlet 2.0.2. Values
that tendril passes as an empty std::any (a bare switch(), which passes (), and a None return)
print as "nothing".
"""
from greenlet import greenlet, getcurrent, GreenletExit

log = []


def done(name):
    print(name, log)
    log.clear()


def show(value):
    return "nothing" if value is None or value == () else str(value)


# r1: RawGreenlet.ValuesInAndOut
def r1():
    main = getcurrent()

    def f(x):
        log.append("f got %s" % x)
        y = main.switch(x + 1)
        log.append("f resumed with %s" % y)
        return "f returned"
    g = greenlet(f)
    log.append("main got %s" % show(g.switch(10)))
    log.append("main got %s" % show(g.switch(20)))
    log.append("dead %s" % g.dead)
r1(); done("r1")


# r2: RawGreenlet.FunctionWithoutValuesPassesNothing
def r2():
    main = getcurrent()

    def f():
        log.append("f ran")
        log.append("f resumed with %s" % show(main.switch()))
    g = greenlet(f)
    log.append("main got %s" % show(g.switch()))
    log.append("main got %s" % show(g.switch()))
r2(); done("r2")


# r3: RawGreenlet.SwitchToTheRunningGreenletReturnsTheValue
def r3():
    main = getcurrent()
    log.append("main got %s" % show(main.switch(5)))

    def f():
        log.append("g got %s" % show(g.switch("to itself")))
    g = greenlet(f)
    g.switch()
r3(); done("r3")


# r4: RawGreenlet.ThrowIntoUnstartedDiesWithoutRunning
def r4():
    g = greenlet(lambda: log.append("g ran"))
    try:
        g.throw(ValueError("thrown before start"))
    except ValueError as e:
        log.append("main caught %s" % e)
    log.append("dead %s" % g.dead)
r4(); done("r4")


# r5: RawGreenlet.GreenletExitIntoUnstartedIsReturned
def r5():
    g = greenlet(lambda: log.append("g ran"))
    exit = GreenletExit()
    log.append("main got the same GreenletExit %s" % (g.throw(exit) is exit))
    log.append("dead %s" % g.dead)
    g2 = greenlet(lambda: log.append("g2 ran"))
    log.append("main got a GreenletExit %s" % isinstance(g2.throw(), GreenletExit))
    log.append("dead %s" % g2.dead)
r5(); done("r5")


# r6: RawGreenlet.ThrowInRaisesAtTheSwitchPoint
def r6():
    main = getcurrent()

    def f():
        try:
            log.append("g before")
            main.switch("g paused")
        except ValueError as e:
            log.append("g caught %s" % e)
            return "g handled it"
    g = greenlet(f)
    log.append("main got %s" % g.switch())
    log.append("main got %s" % g.throw(ValueError("boom")))
    log.append("dead %s" % g.dead)
r6(); done("r6")


# r7: RawGreenlet.GreenletExitIntoSuspendedIsReturned
def r7():
    main = getcurrent()

    def f():
        try:
            log.append("g before")
            main.switch()
            log.append("g never")
        finally:
            log.append("g unwinding")
    g = greenlet(f)
    g.switch()
    exit = GreenletExit()
    log.append("main got the same GreenletExit %s" % (g.throw(exit) is exit))
    log.append("dead %s" % g.dead)
    g2 = greenlet(f)
    g2.switch()
    log.append("main got a GreenletExit %s" % isinstance(g2.throw(), GreenletExit))
r7(); done("r7")


# r8: RawGreenlet.UncaughtThrowInPropagatesToParent
def r8():
    main = getcurrent()

    def f():
        log.append("g before")
        main.switch()
        log.append("g never")
    g = greenlet(f)
    g.switch()
    try:
        g.throw(KeyError("k"))
    except KeyError as e:
        log.append("main caught %s" % e.args[0])
    log.append("dead %s" % g.dead)
    try:
        g.throw(KeyError("k2"))  # goes to g's parent: the running main greenlet
    except KeyError as e:
        log.append("main caught %s" % e.args[0])
r8(); done("r8")


# r9: RawGreenlet.ParentGetAndSet
def r9():
    main = getcurrent()
    a = greenlet(lambda: None)
    b = greenlet(lambda: None)
    log.append("a's parent is main %s" % (a.parent is main))
    log.append("main's parent %s" % main.parent)
    b.parent = a
    log.append("b's parent is a %s" % (b.parent is a))
    for child, parent in ((a, b), (a, a)):
        try:
            child.parent = parent
        except ValueError as e:
            log.append("rejected: %s" % e)
    try:
        main.parent = a
    except AttributeError as e:
        log.append("rejected: %s" % e)
    log.append("a's parent is main %s" % (a.parent is main))

    def p_run():
        v = main.switch("p paused")
        log.append("p resumed with %s" % v)
        return "p returned"
    p = greenlet(p_run)
    log.append("main got %s" % p.switch())

    def c_run():
        getcurrent().parent = p  # while running: its end goes to p now
        return "c returned"
    log.append("main got %s" % greenlet(c_run).switch())
r9(); done("r9")


# r10: RawGreenlet.MainGreenletHandle
def r10():
    main = getcurrent()
    log.append("main dead %s" % main.dead)

    def f():
        log.append("g is current %s" % (getcurrent() is g))
        log.append("g resumed with %s" % main.switch("from g"))
        return "g returned"
    g = greenlet(f)
    log.append("main got %s" % g.switch())
    log.append("main is current %s" % (getcurrent() is main))
    log.append("main got %s" % g.switch("from main"))
    log.append("main dead %s" % main.dead)
r10(); done("r10")


# r11: RawGreenlet.SwitchToFinishedGoesToParent
def r11():
    main = getcurrent()

    def p_run():
        v = main.switch("p paused")
        log.append("p resumed with %s" % v)
        v = main.switch("p paused again")
        log.append("p resumed with %s" % v)
        return "p returned"
    p = greenlet(p_run)
    log.append("main got %s" % p.switch())
    c = greenlet(lambda: "c returned", parent=p)
    log.append("main got %s" % c.switch())
    log.append("main got %s" % c.switch("to dead c"))
    log.append("p dead %s" % p.dead)
    log.append("main got %s" % c.switch("to dead c, dead p"))
r11(); done("r11")


# r12: RawGreenlet.FinishIntoUnstartedParentStartsIt
def r12():
    def a_run(x):
        log.append("a got %s" % x)
        return "a returned"
    a = greenlet(a_run)
    b = greenlet(lambda: "b returned", parent=a)
    log.append("main got %s" % b.switch())
    log.append("a dead %s b dead %s" % (a.dead, b.dead))
r12(); done("r12")


# r13: RawGreenlet.ThrowIntoFinishedGoesToParent
def r13():
    main = getcurrent()

    def p_run():
        try:
            main.switch("p paused")
        except KeyError as e:
            log.append("p caught %s" % e.args[0])
            return "p returned"
    p = greenlet(p_run)
    log.append("main got %s" % p.switch())
    c = greenlet(lambda: "c returned")
    log.append("main got %s" % c.switch())
    c.parent = p
    log.append("main got %s" % c.throw(KeyError("into dead c")))
r13(); done("r13")


# r14: RawGreenlet.EscapingExceptionGoesToParent
def r14():
    main = getcurrent()

    def p_run():
        try:
            main.switch("p paused")
        except ValueError as e:
            log.append("p caught %s" % e)
            return "p returned"
    p = greenlet(p_run)
    log.append("main got %s" % p.switch())

    def c_run():
        log.append("c raising")
        raise ValueError("escaped c")
    log.append("main got %s" % greenlet(c_run, parent=p).switch())
r14(); done("r14")


# r15: RawGreenlet.DestroyingReturnsToTheDestroyer
def r15():
    main = getcurrent()

    def p_run():
        main.switch("p paused")
        log.append("p never")
    p = greenlet(p_run)
    log.append("main got %s" % p.switch())

    def g_run():
        try:
            log.append("g before")
            main.switch("g paused")
        except GreenletExit:
            log.append("g got GreenletExit")
            raise
    g = greenlet(g_run, parent=p)
    log.append("main got %s" % g.switch())
    del g
    log.append("main after destroying g, p dead %s" % p.dead)
r15(); done("r15")
