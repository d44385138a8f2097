/* SPDX-License-Identifier: Apache-2.0 */
/* green_hooks.h: the C interface between libtendril_green.so (which interposes libc's sleep and
 * clock functions) and the tendril scheduler linked into the program. The scheduler defines
 * tendril_green_hooks_v1 and exports it from the executable; the interposer finds it with
 * dlsym(RTLD_DEFAULT) on first use. Internal to tendril: not installed. */
#ifndef TENDRIL_GREEN_HOOKS_H
#define TENDRIL_GREEN_HOOKS_H

#ifdef __cplusplus
extern "C" {
#endif

struct tendril_green_hooks {
  /* on_greenlet() is 1 when the calling thread runs a greenlet of a running hub. */
  int (*on_greenlet)(void);
  /* sleep_ns() sleeps the calling greenlet cooperatively for ns (0: yield, as gevent's
   * sleep(0)). An exception delivered to the greenlet meanwhile (GreenletExit from kill())
   * propagates out of it. */
  void (*sleep_ns)(long long ns);
  /* virtual_now_ns() is 1, with the hub's virtual time in *ns, when the thread runs a SimHub;
   * else 0 (the real clocks apply). */
  int (*virtual_now_ns)(long long* ns);
  /* random_bytes() is 1, with n bytes written to buf, when the thread runs a SimHub: a
   * splitmix64 stream seeded by one recorded random choice (so a schedule replays them and
   * exploration varies them; FIFO draws 0) and the request's number in the run; else 0. */
  int (*random_bytes)(void* buf, unsigned long n);
};

/* Defined by tendril's sched library (src/green_hooks.cpp). */
extern const struct tendril_green_hooks tendril_green_hooks_v1;

#ifdef __cplusplus
}
#endif

#endif
