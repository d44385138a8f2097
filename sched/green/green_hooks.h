/* SPDX-License-Identifier: Apache-2.0 */
/* green_hooks.h: the C interface between libtendril_green.so (which interposes libc's sleeps,
 * clocks, random bytes and socket calls) and the tendril scheduler linked into the program. The
 * scheduler defines tendril_green_hooks_v2 and exports it from the executable; the interposer
 * finds it with dlsym(RTLD_DEFAULT) on first use. Internal to tendril: not installed. */
#ifndef TENDRIL_GREEN_HOOKS_H
#define TENDRIL_GREEN_HOOKS_H

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Events for wait_fd / wait_fds. */
#define TENDRIL_GREEN_READ 1
#define TENDRIL_GREEN_WRITE 2

struct tendril_green_sock;

struct tendril_green_hooks {
  /* size is sizeof(struct tendril_green_hooks) in the scheduler's build: members are only ever
   * appended, and the interposer uses one only if size covers it. */
  unsigned long size;
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
  /* wait_fds() waits cooperatively until one of the n descriptors fds[i] may be ready for
   * events[i] (TENDRIL_GREEN_READ | TENDRIL_GREEN_WRITE), or timeout_ns passes (negative: no
   * timeout). Returns 1 (ready, or maybe: ask the kernel again), 0 (timed out), -1 (the calling
   * thread cannot wait cooperatively on descriptors: no greenlet, or a hub without real ones,
   * SimHub), -2 (fd_closing() closed one of them meanwhile). call names the libc call in
   * reports (a string literal). Exceptions delivered meanwhile propagate. */
  int (*wait_fds)(const int* fds, const int* events, int n, long long timeout_ns, const char* call);
  /* fd_closing() says fd is about to be closed: greenlets waiting on it in wait_fds get -2. */
  void (*fd_closing)(int fd);
  /* run_blocking() runs fn(arg) on the running hub's blocking-call pool while the calling
   * greenlet waits cooperatively, and returns 1; 0 when the calling thread runs no greenlet
   * (run it inline). */
  int (*run_blocking)(void (*fn)(void*), void* arg);
  /* hub_name() is the running hub's name ("LibevHub", "SimHub"), or 0 off any hub. */
  const char* (*hub_name)(void);
  /* sock() is a call on a simulated socket (below); it returns a result >= 0 or -errno, and
   * -ENOSYS when the calling thread runs no hub whose network is simulated. Exceptions delivered
   * while it waits propagate. */
  long (*sock)(struct tendril_green_sock* call);
};

/* Simulated sockets. On a hub with a simulated network (SimHub), every TCP socket the program
 * makes is a placeholder descriptor (a real socket that is never bound or connected) registered
 * with TENDRIL_GREEN_SOCK_OPEN; every later call on it is sent to sock() instead of the kernel. */
enum tendril_green_sock_op {
  TENDRIL_GREEN_SOCK_OPEN,     /* fd, arg: domain. Registers the placeholder. */
  TENDRIL_GREEN_SOCK_BIND,     /* fd, in, inlen */
  TENDRIL_GREEN_SOCK_LISTEN,   /* fd, arg: backlog */
  TENDRIL_GREEN_SOCK_ACCEPT,   /* fd, arg: the new placeholder, out/outlen: the peer */
  TENDRIL_GREEN_SOCK_CONNECT,  /* fd, in, inlen */
  TENDRIL_GREEN_SOCK_RECV,     /* fd, iov/iovcnt, arg: MSG_* flags. Returns the bytes read. */
  TENDRIL_GREEN_SOCK_SEND,     /* fd, iov/iovcnt, arg: MSG_* flags. Returns the bytes sent. */
  TENDRIL_GREEN_SOCK_SHUTDOWN, /* fd, arg: SHUT_RD, SHUT_WR or SHUT_RDWR */
  TENDRIL_GREEN_SOCK_CLOSE,    /* fd */
  TENDRIL_GREEN_SOCK_SOCKNAME, /* fd, out/outlen */
  TENDRIL_GREEN_SOCK_PEERNAME, /* fd, out/outlen */
  TENDRIL_GREEN_SOCK_POLL,     /* fds/nfds (any descriptors), timeout_ns (negative: none) */
  TENDRIL_GREEN_SOCK_RESOLVE,  /* name, text/textlen: the address name resolves to */
  TENDRIL_GREEN_SOCK_TIMEOUT   /* fd, arg: SO_RCVTIMEO or SO_SNDTIMEO, timeout_ns (0: none) */
};

struct tendril_green_sock {
  int op;
  int fd;
  int arg;
  int nonblock; /* the call must not wait (the program's O_NONBLOCK, or MSG_DONTWAIT) */
  const struct iovec* iov;
  int iovcnt;
  const struct sockaddr* in;
  socklen_t inlen;
  struct sockaddr* out;
  socklen_t* outlen;
  struct pollfd* fds;
  unsigned long nfds;
  long long timeout_ns;
  const char* name;
  char* text;
  unsigned long textlen;
  const char* call; /* the libc call, for reports */
};

/* Defined by tendril's sched library (src/green_hooks.cpp). */
extern const struct tendril_green_hooks tendril_green_hooks_v2;

#ifdef __cplusplus
}
#endif

#endif
