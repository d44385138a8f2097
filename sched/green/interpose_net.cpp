// SPDX-License-Identifier: Apache-2.0
// interpose_net.cpp: libtendril_green.so's socket calls. In a program with tendril, every socket
// the program makes (socket, socketpair, accept) is made non-blocking underneath, and the layer
// remembers whether the program itself asked for non-blocking (SOCK_NONBLOCK, O_NONBLOCK through
// fcntl, FIONBIO). A call that would block on a socket the program sees as blocking then waits:
//   - on a greenlet of LibevHub, cooperatively on the hub (other greenlets run meanwhile), through
//     tendril_green_hooks_v2::wait_fds;
//   - anywhere else (another thread, no running hub), in libc's poll(), so the thread blocks as it
//     would have without the layer;
//   - on a greenlet of a hub with no real descriptors (SimHub), in poll() as well, after a
//     one-time warning: the whole hub blocks. That is only for descriptors off its simulated
//     network (a socketpair, a UDP socket, one made before the hub ran): on a SimHub, every TCP
//     socket the program makes is simulated. It is a placeholder descriptor, a real socket the
//     kernel never binds or connects, and every call on it (bind, listen, accept, connect, the
//     reads and writes, shutdown, close, getsockname, getpeername, poll and select) is carried
//     out by the hub's SimNet (sim/src/sim_green_sockets.cpp), in virtual time; names resolve
//     through SimNet's table.
// Blocking semantics are libc's: send and write on a stream socket send everything (or up to
// SO_SNDTIMEO), recv honours MSG_WAITALL and SO_RCVTIMEO (EAGAIN when it passes), a blocking
// connect waits and reports the error, fcntl(F_GETFL) shows the program's own O_NONBLOCK. A wait
// is not ended by a signal (as with SA_RESTART). Closing a socket that greenlets wait on ends
// their waits with EBADF (gevent's cancel_wait; libc would leave them blocked forever).
// poll, ppoll, select and pselect with a timeout wait cooperatively on a LibevHub greenlet, over
// any descriptors (pipes too); their signal masks are not applied there. getaddrinfo and
// gethostbyname run on the hub's blocking-call pool. Descriptors the layer did not make (files,
// pipes, inherited sockets, libev's own) pass through untouched.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "common.hpp"

extern "C" [[noreturn]] void __chk_fail(void);

namespace {

using tendril_green::hooks;
using tendril_green::next;

// ---- Which descriptors are the layer's ----------------------------------------------------

constexpr std::uint8_t managed = 1;        // made non-blocking underneath by the layer
constexpr std::uint8_t user_nonblock = 2;  // the program asked for non-blocking itself
constexpr std::uint8_t simulated = 4;      // a placeholder for a socket of SimHub's network

// FdTable maps descriptors to their state in chunks of 4096, made on first use: 4M descriptors
// at most (a descriptor beyond is never managed: it passes through).
class FdTable {
 public:
  std::uint8_t get(int fd) const noexcept {
    if (fd < 0) return 0;
    const auto c = static_cast<unsigned>(fd) >> chunk_bits;
    if (c >= chunks) return 0;
    const std::atomic<std::uint8_t>* chunk = chunks_[c].load(std::memory_order_acquire);
    return chunk != nullptr ? chunk[fd & chunk_mask].load(std::memory_order_relaxed) : 0;
  }
  void set(int fd, std::uint8_t state) noexcept {
    if (fd < 0) return;
    const auto c = static_cast<unsigned>(fd) >> chunk_bits;
    if (c >= chunks) return;
    std::atomic<std::uint8_t>* chunk = chunks_[c].load(std::memory_order_acquire);
    if (chunk == nullptr) {
      if (state == 0) return;
      // calloc'd zeroes are valid atomics of 0; a chunk is never freed.
      auto* fresh = static_cast<std::atomic<std::uint8_t>*>(
          std::calloc(chunk_size, sizeof(std::atomic<std::uint8_t>)));
      if (fresh == nullptr) return;  // out of memory: the descriptor stays unmanaged
      if (chunks_[c].compare_exchange_strong(chunk, fresh, std::memory_order_acq_rel)) {
        chunk = fresh;
      } else {
        std::free(fresh);
      }
    }
    chunk[fd & chunk_mask].store(state, std::memory_order_relaxed);
  }

 private:
  static constexpr unsigned chunk_bits = 12;
  static constexpr unsigned chunk_size = 1u << chunk_bits;
  static constexpr unsigned chunk_mask = chunk_size - 1;
  static constexpr unsigned chunks = 1024;
  std::atomic<std::atomic<std::uint8_t>*> chunks_[chunks] = {};
};

constinit FdTable table;

// blocks() says whether a call on fd with these flags must look blocking to the program.
bool blocks(int fd, int flags = 0) noexcept {
  const std::uint8_t s = table.get(fd);
  return (s & managed) != 0 && (s & user_nonblock) == 0 && (flags & MSG_DONTWAIT) == 0;
}

// adopt() records a descriptor the layer made non-blocking; nonblock is the program's view.
void adopt(int fd, bool nonblock, std::uint8_t more = 0) noexcept {
  table.set(fd, static_cast<std::uint8_t>(managed | more | (nonblock ? user_nonblock : 0)));
}

bool is_simulated(int fd) noexcept { return (table.get(fd) & simulated) != 0; }

// ---- Waiting ------------------------------------------------------------------------------

constexpr long long billion = 1'000'000'000;

long long monotonic_ns() noexcept {
  static const auto real = next<int (*)(clockid_t, timespec*)>("clock_gettime");
  timespec t{};
  real(CLOCK_MONOTONIC, &t);
  return static_cast<long long>(t.tv_sec) * billion + t.tv_nsec;
}

// Deadline is a call's time budget: none (-1) or an absolute monotonic time.
struct Deadline {
  long long at = -1;
  static Deadline after(long long ns) noexcept {
    return Deadline{ns < 0 ? -1 : monotonic_ns() + ns};
  }
  // left() is the time left (-1: no limit; 0: passed).
  long long left() const noexcept {
    if (at < 0) return -1;
    const long long now = monotonic_ns();
    return at > now ? at - now : 0;
  }
};

// socket_timeout() is SO_RCVTIMEO or SO_SNDTIMEO in ns, -1 when none is set.
long long socket_timeout(int fd, int option) noexcept {
  timeval tv{};
  socklen_t len = sizeof tv;
  if (::getsockopt(fd, SOL_SOCKET, option, &tv, &len) != 0) return -1;
  if (tv.tv_sec == 0 && tv.tv_usec == 0) return -1;
  return static_cast<long long>(tv.tv_sec) * billion + static_cast<long long>(tv.tv_usec) * 1000;
}

// warn_once() says, once per call name, that a call on a greenlet blocks its whole hub.
void warn_once(const char* call, const char* hub) noexcept {
  static std::atomic<const char*> warned[32] = {};
  for (auto& slot : warned) {
    const char* seen = slot.load(std::memory_order_acquire);
    if (seen == call) return;
    if (seen == nullptr) {
      if (slot.compare_exchange_strong(seen, call)) break;
      if (seen == call) return;
    }
  }
  char line[400];
  const int n = std::snprintf(
      line, sizeof line,
      "tendril::green: %s() on a greenlet of %s blocks the whole hub: %s waits only on "
      "its simulated network, which has the TCP sockets made on it, not this descriptor. "
      "(Said once per call.)\n",
      call, hub != nullptr ? hub : "this hub", hub != nullptr ? hub : "it");
  static const auto real_write = next<ssize_t (*)(int, const void*, size_t)>("write");
  if (n > 0) (void)real_write(2, line, static_cast<size_t>(n < 400 ? n : 399));
}

int real_poll(pollfd* fds, nfds_t n, int timeout_ms) {
  static const auto real = next<int (*)(pollfd*, nfds_t, int)>("poll");
  return real(fds, n, timeout_ms);
}

int to_ms(long long ns) noexcept {
  if (ns < 0) return -1;
  const long long ms = (ns + 999'999) / 1'000'000;
  return ms > INT_MAX ? INT_MAX : static_cast<int>(ms);
}

// wait_for() waits until fd may be ready for events (TENDRIL_GREEN_*), cooperatively where it
// can. Returns 1 (try again), 0 (the time left passed) or -2 (closed by another greenlet).
int wait_for(int fd, int events, const Deadline& deadline, const char* call) {
  const tendril_green_hooks* h = hooks();
  if (h != nullptr) {
    const int r = h->wait_fds(&fd, &events, 1, deadline.left(), call);
    if (r != -1) return r;
    if (h->on_greenlet() != 0) warn_once(call, h->hub_name());
  }
  pollfd p{fd,
           static_cast<short>(((events & TENDRIL_GREEN_READ) != 0 ? POLLIN : 0) |
                              ((events & TENDRIL_GREEN_WRITE) != 0 ? POLLOUT : 0)),
           0};
  for (;;) {
    const int r = real_poll(&p, 1, to_ms(deadline.left()));
    if (r > 0) return 1;
    if (r == 0) return 0;
    if (errno != EINTR) return 1;  // the call itself will report what is wrong
  }
}

bool would_block(ssize_t r) noexcept { return r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK); }

// retry() runs call until it does not say EAGAIN, waiting for fd in between; with the socket's
// timeout (option: SO_RCVTIMEO or SO_SNDTIMEO) passed, it fails with EAGAIN as libc's does.
template <class Call>
ssize_t retry(int fd, int events, int option, const char* name, Call call) {
  ssize_t r = call();
  if (!would_block(r)) return r;
  const Deadline deadline = Deadline::after(socket_timeout(fd, option));
  for (;;) {
    const int w = wait_for(fd, events, deadline, name);
    if (w == -2) {
      errno = EBADF;
      return -1;
    }
    r = call();
    if (!would_block(r)) return r;
    if (w == 0) return r;  // timed out, and still nothing: EAGAIN
  }
}

bool stream_socket(int fd) noexcept {
  int type = 0;
  socklen_t len = sizeof type;
  return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

// send_all() is a blocking send on a stream socket: every byte, unless an error or the socket's
// timeout ends it first (then the count so far, or -1 if none went).
template <class Send>
ssize_t send_all(int fd, std::size_t n, const char* name, Send send) {
  ssize_t r = send(0);
  if (r < 0 && !would_block(r)) return r;
  std::size_t done = r > 0 ? static_cast<std::size_t>(r) : 0;
  if (done == n) return r;
  if (r >= 0 && !stream_socket(fd)) return r;  // a datagram goes whole or not at all
  const Deadline deadline = Deadline::after(socket_timeout(fd, SO_SNDTIMEO));
  for (;;) {
    const int w = wait_for(fd, TENDRIL_GREEN_WRITE, deadline, name);
    if (w == -2 && done == 0) {
      errno = EBADF;
      return -1;
    }
    if (w == -2) return static_cast<ssize_t>(done);
    r = send(done);
    if (r > 0) done += static_cast<std::size_t>(r);
    if (done == n) return static_cast<ssize_t>(done);
    if (r < 0 && !would_block(r)) return done > 0 ? static_cast<ssize_t>(done) : r;
    if (w == 0) {  // the socket's timeout passed: what went, or EAGAIN
      if (done > 0) return static_cast<ssize_t>(done);
      errno = EAGAIN;
      return -1;
    }
  }
}

// Iovecs is a copy of an iovec array that can be advanced past bytes already sent.
struct Iovecs {
  std::vector<iovec> v;
  std::size_t first = 0;
  Iovecs(const iovec* iov, int count) : v(iov, iov + (count > 0 ? count : 0)) {}
  std::size_t total() const noexcept {
    std::size_t t = 0;
    for (const iovec& i : v) t += i.iov_len;
    return t;
  }
  void advance(std::size_t n) noexcept {
    while (n > 0 && first < v.size()) {
      const std::size_t take = n < v[first].iov_len ? n : v[first].iov_len;
      v[first].iov_base = static_cast<char*>(v[first].iov_base) + take;
      v[first].iov_len -= take;
      n -= take;
      if (v[first].iov_len == 0) ++first;
    }
  }
  iovec* data() noexcept { return v.data() + first; }
  int count() const noexcept { return static_cast<int>(v.size() - first); }
};

// ---- Simulated sockets ----------------------------------------------------------------------

tendril_green_sock sock_call(int op, int fd, const char* name) noexcept {
  tendril_green_sock c{};
  c.op = op;
  c.fd = fd;
  c.call = name;
  return c;
}

// sim() sends a call on a simulated socket to the hub and returns its result, or -1 with errno.
// Off the SimHub that made the socket (another thread, or after its run) the call fails with
// EBADF, and says so once.
long sim(tendril_green_sock& c) {
  const tendril_green_hooks* h = hooks();
  const long r = h != nullptr && TENDRIL_GREEN_HAS(h, sock) ? h->sock(&c) : -ENOSYS;
  if (r >= 0) return r;
  if (r == -ENOSYS) {
    static std::atomic<bool> said{false};
    if (!said.exchange(true)) {
      char line[300];
      const int n = std::snprintf(
          line, sizeof line,
          "tendril::green: %s() on a socket of SimHub's simulated network, called where no "
          "SimHub runs (another thread, or after the run): it fails with EBADF. (Said once.)\n",
          c.call);
      static const auto real_write = next<ssize_t (*)(int, const void*, size_t)>("write");
      if (n > 0) (void)real_write(2, line, static_cast<size_t>(n < 300 ? n : 299));
    }
    errno = EBADF;
    return -1;
  }
  errno = static_cast<int>(-r);
  return -1;
}

// sim_io() is a read (RECV) or write (SEND) of a simulated socket.
ssize_t sim_io(int op, int fd, const iovec* iov, int count, int flags, const char* name) {
  tendril_green_sock c = sock_call(op, fd, name);
  c.iov = iov;
  c.iovcnt = count;
  c.arg = flags;
  c.nonblock = blocks(fd, flags) ? 0 : 1;
  return static_cast<ssize_t>(sim(c));
}

ssize_t sim_io(int op, int fd, const void* buf, size_t n, int flags, const char* name) {
  iovec one{const_cast<void*>(buf), n};
  return sim_io(op, fd, &one, 1, flags, name);
}

// sim_poll() is poll() over descriptors of which at least one is simulated (-1 with EBADF where
// no SimHub runs, as sim()).
int sim_poll(pollfd* fds, nfds_t n, long long timeout_ns, const char* name) {
  tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_POLL, -1, name);
  c.fds = fds;
  c.nfds = n;
  c.timeout_ns = timeout_ns;
  return static_cast<int>(sim(c));
}

bool any_simulated(const pollfd* fds, nfds_t n) noexcept {
  for (nfds_t i = 0; i < n; ++i) {
    if (is_simulated(fds[i].fd)) return true;
  }
  return false;
}

// refuse_dup() fails a dup of a simulated socket: the simulated network keeps one descriptor
// per socket.
int refuse_dup(const char* name) noexcept {
  static std::atomic<bool> said{false};
  if (!said.exchange(true)) {
    char line[300];
    const int n = std::snprintf(line, sizeof line,
                                "tendril::green: %s() of a socket of SimHub's simulated network "
                                "fails with EOPNOTSUPP: it has one descriptor per socket. (Said "
                                "once.)\n",
                                name);
    static const auto real_write = next<ssize_t (*)(int, const void*, size_t)>("write");
    if (n > 0) (void)real_write(2, line, static_cast<size_t>(n < 300 ? n : 299));
  }
  errno = EOPNOTSUPP;
  return -1;
}

}  // namespace

extern "C" {

// ---- Making sockets ------------------------------------------------------------------------

int socket(int domain, int type, int protocol) noexcept {
  static const auto real = next<int (*)(int, int, int)>("socket");
  if (hooks() == nullptr) return real(domain, type, protocol);
  const int fd = real(domain, type | SOCK_NONBLOCK, protocol);
  if (fd < 0) return fd;
  std::uint8_t more = 0;
  const tendril_green_hooks* h = hooks();
  if ((domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
      (protocol == 0 || protocol == IPPROTO_TCP) && h != nullptr && TENDRIL_GREEN_HAS(h, sock)) {
    // On a SimHub the socket is simulated, the descriptor a placeholder.
    tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_OPEN, fd, "socket");
    c.arg = domain;
    if (h->sock(&c) == 0) more = simulated;
  }
  adopt(fd, (type & SOCK_NONBLOCK) != 0, more);
  return fd;
}

int socketpair(int domain, int type, int protocol, int fds[2]) noexcept {
  static const auto real = next<int (*)(int, int, int, int*)>("socketpair");
  if (hooks() == nullptr) return real(domain, type, protocol, fds);
  const int r = real(domain, type | SOCK_NONBLOCK, protocol, fds);
  if (r == 0) {
    adopt(fds[0], (type & SOCK_NONBLOCK) != 0);
    adopt(fds[1], (type & SOCK_NONBLOCK) != 0);
  }
  return r;
}

int accept4(int fd, sockaddr* addr, socklen_t* len, int flags) {
  static const auto real = next<int (*)(int, sockaddr*, socklen_t*, int)>("accept4");
  if ((table.get(fd) & managed) == 0) return real(fd, addr, len, flags);
  if (is_simulated(fd)) {
    static const auto real_socket = next<int (*)(int, int, int)>("socket");
    static const auto real_close = next<int (*)(int)>("close");
    int domain = AF_INET;
    socklen_t dlen = sizeof domain;
    ::getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &dlen);
    // The accepted socket's placeholder, closed again if the accept fails or is interrupted.
    struct Placeholder {
      int fd;
      ~Placeholder() {
        if (fd >= 0) real_close(fd);
      }
    } p{real_socket(domain, SOCK_STREAM | SOCK_NONBLOCK | (flags & SOCK_CLOEXEC), 0)};
    if (p.fd < 0) return -1;
    tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_ACCEPT, fd, "accept");
    c.arg = p.fd;
    c.nonblock = blocks(fd) ? 0 : 1;
    c.out = addr;
    c.outlen = len;
    if (sim(c) < 0) return -1;
    adopt(p.fd, (flags & SOCK_NONBLOCK) != 0, simulated);
    return std::exchange(p.fd, -1);
  }
  auto call = [&] { return static_cast<ssize_t>(real(fd, addr, len, flags | SOCK_NONBLOCK)); };
  const auto r = static_cast<int>(
      blocks(fd) ? retry(fd, TENDRIL_GREEN_READ, SO_RCVTIMEO, "accept", call) : call());
  if (r >= 0) adopt(r, (flags & SOCK_NONBLOCK) != 0);
  return r;
}

int accept(int fd, sockaddr* addr, socklen_t* len) { return accept4(fd, addr, len, 0); }

int connect(int fd, const sockaddr* addr, socklen_t len) {
  static const auto real = next<int (*)(int, const sockaddr*, socklen_t)>("connect");
  if (is_simulated(fd)) {
    tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_CONNECT, fd, "connect");
    c.in = addr;
    c.inlen = len;
    c.nonblock = blocks(fd) ? 0 : 1;
    return static_cast<int>(sim(c));
  }
  const int r = real(fd, addr, len);
  if (r == 0 || errno != EINPROGRESS || !blocks(fd)) return r;
  // A blocking connect: wait until it is done (Linux bounds it by SO_SNDTIMEO, then says
  // EINPROGRESS), then report its outcome.
  const Deadline deadline = Deadline::after(socket_timeout(fd, SO_SNDTIMEO));
  for (;;) {
    const int w = wait_for(fd, TENDRIL_GREEN_WRITE, deadline, "connect");
    if (w == -2) {
      errno = EBADF;
      return -1;
    }
    pollfd p{fd, POLLOUT, 0};
    if (real_poll(&p, 1, 0) > 0) break;
    if (w == 0) {
      errno = EINPROGRESS;
      return -1;
    }
  }
  int err = 0;
  socklen_t elen = sizeof err;
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0) return -1;
  if (err != 0) {
    errno = err;
    return -1;
  }
  return 0;
}

int bind(int fd, const sockaddr* addr, socklen_t len) noexcept {
  static const auto real = next<int (*)(int, const sockaddr*, socklen_t)>("bind");
  if (!is_simulated(fd)) return real(fd, addr, len);
  tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_BIND, fd, "bind");
  c.in = addr;
  c.inlen = len;
  return static_cast<int>(sim(c));
}

int listen(int fd, int backlog) noexcept {
  static const auto real = next<int (*)(int, int)>("listen");
  if (!is_simulated(fd)) return real(fd, backlog);
  tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_LISTEN, fd, "listen");
  c.arg = backlog;
  return static_cast<int>(sim(c));
}

int setsockopt(int fd, int level, int option, const void* value, socklen_t len) noexcept {
  static const auto real = next<int (*)(int, int, int, const void*, socklen_t)>("setsockopt");
  const int r = real(fd, level, option, value, len);  // the placeholder keeps it for getsockopt
  if (r != 0 || !is_simulated(fd) || level != SOL_SOCKET ||
      (option != SO_RCVTIMEO && option != SO_SNDTIMEO) || len < sizeof(timeval)) {
    return r;
  }
  // The simulated socket keeps the exact timeout (the kernel's copy is rounded to its tick).
  timeval tv{};
  std::memcpy(&tv, value, sizeof tv);
  tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_TIMEOUT, fd, "setsockopt");
  c.arg = option;
  c.timeout_ns = static_cast<long long>(tv.tv_sec) * billion + tv.tv_usec * 1000LL;
  return static_cast<int>(sim(c));
}

int shutdown(int fd, int how) noexcept {
  static const auto real = next<int (*)(int, int)>("shutdown");
  if (!is_simulated(fd)) return real(fd, how);
  tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_SHUTDOWN, fd, "shutdown");
  c.arg = how;
  return static_cast<int>(sim(c));
}

int getsockname(int fd, sockaddr* addr, socklen_t* len) noexcept {
  static const auto real = next<int (*)(int, sockaddr*, socklen_t*)>("getsockname");
  if (!is_simulated(fd)) return real(fd, addr, len);
  tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_SOCKNAME, fd, "getsockname");
  c.out = addr;
  c.outlen = len;
  return static_cast<int>(sim(c));
}

int getpeername(int fd, sockaddr* addr, socklen_t* len) noexcept {
  static const auto real = next<int (*)(int, sockaddr*, socklen_t*)>("getpeername");
  if (!is_simulated(fd)) return real(fd, addr, len);
  tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_PEERNAME, fd, "getpeername");
  c.out = addr;
  c.outlen = len;
  return static_cast<int>(sim(c));
}

// ---- Reading -------------------------------------------------------------------------------

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  static const auto real = next<ssize_t (*)(int, void*, size_t, int)>("recv");
  if (is_simulated(fd)) return sim_io(TENDRIL_GREEN_SOCK_RECV, fd, buf, n, flags, "recv");
  if (!blocks(fd, flags)) return real(fd, buf, n, flags);
  if ((flags & MSG_WAITALL) == 0 || n == 0) {
    return retry(fd, TENDRIL_GREEN_READ, SO_RCVTIMEO, "recv",
                 [&] { return real(fd, buf, n, flags); });
  }
  // MSG_WAITALL: everything asked for, unless EOF, an error or the timeout ends it first.
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r = retry(fd, TENDRIL_GREEN_READ, SO_RCVTIMEO, "recv", [&] {
      return real(fd, static_cast<char*>(buf) + done, n - done, flags & ~MSG_WAITALL);
    });
    if (r < 0) return done > 0 ? static_cast<ssize_t>(done) : r;
    if (r == 0) break;
    done += static_cast<std::size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* len) {
  static const auto real =
      next<ssize_t (*)(int, void*, size_t, int, sockaddr*, socklen_t*)>("recvfrom");
  if (is_simulated(fd)) {
    if (from != nullptr && len != nullptr) *len = 0;  // a stream socket names no sender
    return sim_io(TENDRIL_GREEN_SOCK_RECV, fd, buf, n, flags, "recvfrom");
  }
  if (!blocks(fd, flags)) return real(fd, buf, n, flags, from, len);
  return retry(fd, TENDRIL_GREEN_READ, SO_RCVTIMEO, "recvfrom",
               [&] { return real(fd, buf, n, flags, from, len); });
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
  static const auto real = next<ssize_t (*)(int, msghdr*, int)>("recvmsg");
  if (is_simulated(fd)) {
    msg->msg_namelen = 0;
    msg->msg_controllen = 0;
    msg->msg_flags = 0;
    return sim_io(TENDRIL_GREEN_SOCK_RECV, fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen),
                  flags, "recvmsg");
  }
  if (!blocks(fd, flags)) return real(fd, msg, flags);
  return retry(fd, TENDRIL_GREEN_READ, SO_RCVTIMEO, "recvmsg",
               [&] { return real(fd, msg, flags); });
}

ssize_t read(int fd, void* buf, size_t n) {
  static const auto real = next<ssize_t (*)(int, void*, size_t)>("read");
  if (is_simulated(fd)) return sim_io(TENDRIL_GREEN_SOCK_RECV, fd, buf, n, 0, "read");
  if (!blocks(fd)) return real(fd, buf, n);
  return retry(fd, TENDRIL_GREEN_READ, SO_RCVTIMEO, "read", [&] { return real(fd, buf, n); });
}

ssize_t readv(int fd, const iovec* iov, int count) {
  static const auto real = next<ssize_t (*)(int, const iovec*, int)>("readv");
  if (is_simulated(fd)) return sim_io(TENDRIL_GREEN_SOCK_RECV, fd, iov, count, 0, "readv");
  if (!blocks(fd)) return real(fd, iov, count);
  return retry(fd, TENDRIL_GREEN_READ, SO_RCVTIMEO, "readv", [&] { return real(fd, iov, count); });
}

// _FORTIFY_SOURCE's checked forms, which would otherwise reach libc's internal read and recv.
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  return read(fd, buf, n);
}

ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  return recv(fd, buf, n, flags);
}

ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from,
                       socklen_t* len) {
  if (n > buflen) __chk_fail();
  return recvfrom(fd, buf, n, flags, from, len);
}

// ---- Writing -------------------------------------------------------------------------------

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t, int)>("send");
  if (is_simulated(fd)) return sim_io(TENDRIL_GREEN_SOCK_SEND, fd, buf, n, flags, "send");
  if (!blocks(fd, flags)) return real(fd, buf, n, flags);
  return send_all(fd, n, "send", [&](std::size_t done) {
    return real(fd, static_cast<const char*>(buf) + done, n - done, flags);
  });
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* to, socklen_t len) {
  static const auto real =
      next<ssize_t (*)(int, const void*, size_t, int, const sockaddr*, socklen_t)>("sendto");
  if (is_simulated(fd)) return sim_io(TENDRIL_GREEN_SOCK_SEND, fd, buf, n, flags, "sendto");
  if (!blocks(fd, flags)) return real(fd, buf, n, flags, to, len);
  return send_all(fd, n, "sendto", [&](std::size_t done) {
    return real(fd, static_cast<const char*>(buf) + done, n - done, flags, to, len);
  });
}

ssize_t write(int fd, const void* buf, size_t n) {
  static const auto real = next<ssize_t (*)(int, const void*, size_t)>("write");
  if (is_simulated(fd)) return sim_io(TENDRIL_GREEN_SOCK_SEND, fd, buf, n, 0, "write");
  if (!blocks(fd)) return real(fd, buf, n);
  return send_all(fd, n, "write", [&](std::size_t done) {
    return real(fd, static_cast<const char*>(buf) + done, n - done);
  });
}

ssize_t writev(int fd, const iovec* iov, int count) {
  static const auto real = next<ssize_t (*)(int, const iovec*, int)>("writev");
  if (is_simulated(fd)) return sim_io(TENDRIL_GREEN_SOCK_SEND, fd, iov, count, 0, "writev");
  if (!blocks(fd)) return real(fd, iov, count);
  Iovecs left(iov, count);
  std::size_t sent = 0;
  return send_all(fd, left.total(), "writev", [&](std::size_t done) {
    left.advance(done - sent);
    sent = done;
    return real(fd, left.data(), left.count());
  });
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
  static const auto real = next<ssize_t (*)(int, const msghdr*, int)>("sendmsg");
  if (is_simulated(fd)) {
    return sim_io(TENDRIL_GREEN_SOCK_SEND, fd, msg->msg_iov, static_cast<int>(msg->msg_iovlen),
                  flags, "sendmsg");
  }
  if (!blocks(fd, flags)) return real(fd, msg, flags);
  Iovecs left(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
  std::size_t sent = 0;
  return send_all(fd, left.total(), "sendmsg", [&](std::size_t done) {
    left.advance(done - sent);
    sent = done;
    msghdr rest = *msg;
    rest.msg_iov = left.data();
    rest.msg_iovlen = static_cast<std::size_t>(left.count());
    if (done > 0) {  // ancillary data goes with the first bytes only
      rest.msg_control = nullptr;
      rest.msg_controllen = 0;
    }
    return real(fd, &rest, flags);
  });
}

// ---- Descriptors ---------------------------------------------------------------------------

int close(int fd) {
  static const auto real = next<int (*)(int)>("close");
  const std::uint8_t state = table.get(fd);
  if ((state & managed) != 0) {
    table.set(fd, 0);  // before the number can be reused
    const tendril_green_hooks* h = hooks();
    if ((state & simulated) != 0 && h != nullptr && TENDRIL_GREEN_HAS(h, sock)) {
      tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_CLOSE, fd, "close");
      (void)h->sock(&c);  // off the hub, or of an earlier run: only the placeholder is left
    } else if (h != nullptr) {
      h->fd_closing(fd);
    }
  }
  return real(fd);
}

int dup(int fd) noexcept {
  static const auto real = next<int (*)(int)>("dup");
  if (is_simulated(fd)) return refuse_dup("dup");
  const int r = real(fd);
  if (r >= 0) table.set(r, table.get(fd));
  return r;
}

int dup3(int fd, int fd2, int flags) noexcept {
  static const auto real = next<int (*)(int, int, int)>("dup3");
  if (is_simulated(fd) || is_simulated(fd2)) return refuse_dup("dup3");
  if (fd != fd2 && (table.get(fd2) & managed) != 0) {
    table.set(fd2, 0);
    if (const tendril_green_hooks* h = hooks()) h->fd_closing(fd2);
  }
  const int r = real(fd, fd2, flags);
  if (r >= 0) table.set(r, table.get(fd));
  return r;
}

int dup2(int fd, int fd2) noexcept {
  static const auto real = next<int (*)(int, int)>("dup2");
  if (is_simulated(fd) || is_simulated(fd2)) return refuse_dup("dup2");
  if (fd != fd2 && (table.get(fd2) & managed) != 0) {
    table.set(fd2, 0);
    if (const tendril_green_hooks* h = hooks()) h->fd_closing(fd2);
  }
  const int r = real(fd, fd2);
  if (r >= 0) table.set(r, table.get(fd));
  return r;
}

}  // extern "C"

namespace {

// fcntl_on() is fcntl and fcntl64: the layer's sockets keep O_NONBLOCK underneath, and the
// program reads and writes its own view of it.
int fcntl_on(int (*real)(int, int, ...), int fd, int cmd, void* arg) {
  const std::uint8_t state = table.get(fd);
  if ((state & managed) == 0) {
    const int r = real(fd, cmd, arg);
    if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) table.set(r, 0);
    return r;
  }
  switch (cmd) {
    case F_GETFL: {
      const int r = real(fd, cmd);
      if (r < 0) return r;
      return (state & user_nonblock) != 0 ? (r | O_NONBLOCK) : (r & ~O_NONBLOCK);
    }
    case F_SETFL: {
      const auto flags = static_cast<int>(reinterpret_cast<std::intptr_t>(arg));
      const int r = real(fd, cmd, flags | O_NONBLOCK);
      if (r == 0) adopt(fd, (flags & O_NONBLOCK) != 0, state & simulated);
      return r;
    }
    case F_DUPFD:
    case F_DUPFD_CLOEXEC: {
      if ((state & simulated) != 0) return refuse_dup("fcntl(F_DUPFD)");
      const int r = real(fd, cmd, arg);
      if (r >= 0) table.set(r, state);
      return r;
    }
    default:
      return real(fd, cmd, arg);
  }
}

}  // namespace

extern "C" {

int fcntl(int fd, int cmd, ...) {
  static const auto real = next<int (*)(int, int, ...)>("fcntl");
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);  // as glibc's own: every argument fcntl takes fits
  va_end(ap);
  return fcntl_on(real, fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...) {
  static const auto real = next<int (*)(int, int, ...)>("fcntl64");
  va_list ap;
  va_start(ap, cmd);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  return fcntl_on(real, fd, cmd, arg);
}

int ioctl(int fd, unsigned long request, ...) noexcept {
  static const auto real = next<int (*)(int, unsigned long, ...)>("ioctl");
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request == FIONBIO && (table.get(fd) & managed) != 0 && arg != nullptr) {
    adopt(fd, *static_cast<const int*>(arg) != 0,
          table.get(fd) & simulated);  // stays non-blocking underneath
    return 0;
  }
  return real(fd, request, arg);
}

}  // extern "C"

namespace {

// poll_wait() is poll with a timeout on a greenlet: poll(0) for what is ready, else a
// cooperative wait on every descriptor, and again. Returns -3 when the hub cannot wait on
// descriptors (the caller then blocks in libc's poll).
int poll_wait(pollfd* fds, nfds_t n, long long timeout_ns, const char* call) {
  if (any_simulated(fds, n)) return sim_poll(fds, n, timeout_ns, call);
  const tendril_green_hooks* h = hooks();
  if (h == nullptr || h->on_greenlet() == 0) return -3;
  std::vector<int> wfds;
  std::vector<int> events;
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    const int e = ((fds[i].events & (POLLIN | POLLPRI | POLLRDHUP)) != 0 ? TENDRIL_GREEN_READ : 0) |
                  ((fds[i].events & POLLOUT) != 0 ? TENDRIL_GREEN_WRITE : 0);
    wfds.push_back(fds[i].fd);
    events.push_back(e != 0 ? e : TENDRIL_GREEN_READ);  // errors and hangups show as readable
  }
  if (wfds.empty() && timeout_ns >= 0) {
    // No descriptor to wait on: the poll(NULL, 0, ms) and select(0, ...) idiom for a sleep, a
    // cooperative one (in virtual time on SimHub).
    for (nfds_t i = 0; i < n; ++i) fds[i].revents = 0;
    h->sleep_ns(timeout_ns);
    return 0;
  }
  const Deadline deadline = Deadline::after(timeout_ns);
  for (;;) {
    const int r = real_poll(fds, n, 0);
    if (r != 0) return r;
    const long long left = deadline.left();
    if (left == 0) return 0;
    const int w =
        h->wait_fds(wfds.data(), events.data(), static_cast<int>(wfds.size()), left, call);
    if (w == -1) {
      warn_once(call, h->hub_name());
      return -3;
    }
  }
}

}  // namespace

extern "C" {

int poll(pollfd* fds, nfds_t n, int timeout_ms) {
  if (timeout_ms != 0 || any_simulated(fds, n)) {
    const int r = poll_wait(fds, n, timeout_ms < 0 ? -1 : timeout_ms * 1'000'000LL, "poll");
    if (r != -3) return r;
  }
  return real_poll(fds, n, timeout_ms);
}

int __poll_chk(pollfd* fds, nfds_t n, int timeout_ms, size_t fdslen) {
  if (fdslen / sizeof(*fds) < n) __chk_fail();
  return poll(fds, n, timeout_ms);
}

int ppoll(pollfd* fds, nfds_t n, const timespec* timeout, const sigset_t* mask) {
  static const auto real =
      next<int (*)(pollfd*, nfds_t, const timespec*, const sigset_t*)>("ppoll");
  if (timeout == nullptr || timeout->tv_sec != 0 || timeout->tv_nsec != 0 ||
      any_simulated(fds, n)) {
    const long long ns = timeout == nullptr
                             ? -1
                             : static_cast<long long>(timeout->tv_sec) * billion + timeout->tv_nsec;
    const int r = poll_wait(fds, n, ns, "ppoll");
    if (r != -3) return r;
  }
  return real(fds, n, timeout, mask);
}

}  // extern "C"

namespace {

// sets_simulated() says whether select's sets name a simulated socket.
bool sets_simulated(int nfds, const fd_set* r, const fd_set* w, const fd_set* e) noexcept {
  if (nfds < 0 || nfds > FD_SETSIZE) return false;
  for (int fd = 0; fd < nfds; ++fd) {
    if (((r != nullptr && FD_ISSET(fd, r)) || (w != nullptr && FD_ISSET(fd, w)) ||
         (e != nullptr && FD_ISSET(fd, e))) &&
        is_simulated(fd)) {
      return true;
    }
  }
  return false;
}

// select_wait() is select over poll_wait: the sets in, the sets out, as select leaves them.
int select_wait(int nfds, fd_set* r, fd_set* w, fd_set* e, long long timeout_ns, const char* call) {
  if (nfds < 0 || nfds > FD_SETSIZE) return -3;  // libc reports it
  std::vector<pollfd> fds;
  for (int fd = 0; fd < nfds; ++fd) {
    short events = 0;
    if (r != nullptr && FD_ISSET(fd, r)) events |= POLLIN;
    if (w != nullptr && FD_ISSET(fd, w)) events |= POLLOUT;
    if (e != nullptr && FD_ISSET(fd, e)) events |= POLLPRI;
    if (events != 0) fds.push_back(pollfd{fd, events, 0});
  }
  const int rc = poll_wait(fds.data(), fds.size(), timeout_ns, call);
  if (rc < 0) return rc;
  for (const pollfd& p : fds) {
    if ((p.revents & POLLNVAL) != 0) {
      errno = EBADF;
      return -1;
    }
  }
  int count = 0;
  for (const pollfd& p : fds) {
    const bool readable = (p.revents & (POLLIN | POLLHUP | POLLERR)) != 0;
    const bool writable = (p.revents & (POLLOUT | POLLERR)) != 0;
    const bool urgent = (p.revents & POLLPRI) != 0;
    if (r != nullptr && FD_ISSET(p.fd, r)) {
      if (readable)
        ++count;
      else
        FD_CLR(p.fd, r);
    }
    if (w != nullptr && FD_ISSET(p.fd, w)) {
      if (writable)
        ++count;
      else
        FD_CLR(p.fd, w);
    }
    if (e != nullptr && FD_ISSET(p.fd, e)) {
      if (urgent)
        ++count;
      else
        FD_CLR(p.fd, e);
    }
  }
  return count;
}

}  // namespace

extern "C" {

int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout) {
  static const auto real = next<int (*)(int, fd_set*, fd_set*, fd_set*, timeval*)>("select");
  if (timeout == nullptr || timeout->tv_sec != 0 || timeout->tv_usec != 0 ||
      sets_simulated(nfds, r, w, e)) {
    const long long ns = timeout == nullptr ? -1
                                            : static_cast<long long>(timeout->tv_sec) * billion +
                                                  static_cast<long long>(timeout->tv_usec) * 1000;
    const Deadline deadline = Deadline::after(ns);
    const int rc = select_wait(nfds, r, w, e, ns, "select");
    if (rc != -3) {
      if (timeout != nullptr) {  // Linux leaves the time not slept in it: none on a timeout
        const long long left = rc == 0 ? 0 : deadline.left();
        timeout->tv_sec = static_cast<time_t>(left / billion);
        timeout->tv_usec = static_cast<suseconds_t>(left % billion / 1000);
      }
      return rc;
    }
  }
  return real(nfds, r, w, e, timeout);
}

int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout,
            const sigset_t* mask) {
  static const auto real =
      next<int (*)(int, fd_set*, fd_set*, fd_set*, const timespec*, const sigset_t*)>("pselect");
  if (timeout == nullptr || timeout->tv_sec != 0 || timeout->tv_nsec != 0 ||
      sets_simulated(nfds, r, w, e)) {
    const long long ns = timeout == nullptr
                             ? -1
                             : static_cast<long long>(timeout->tv_sec) * billion + timeout->tv_nsec;
    const int rc = select_wait(nfds, r, w, e, ns, "pselect");
    if (rc != -3) return rc;
  }
  return real(nfds, r, w, e, timeout, mask);
}

// ---- Names ---------------------------------------------------------------------------------

int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  static const auto real =
      next<int (*)(const char*, const char*, const addrinfo*, addrinfo**)>("getaddrinfo");
  struct Call {
    const char* node;
    const char* service;
    const addrinfo* hints;
    addrinfo** res;
    int result;
    int err;
  } call{node, service, hints, res, 0, 0};
  const tendril_green_hooks* h = hooks();
  char numeric[64];
  if (node != nullptr && h != nullptr && TENDRIL_GREEN_HAS(h, sock)) {
    // On a SimHub, the name resolves through its network's table, then to numbers only.
    tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_RESOLVE, -1, "getaddrinfo");
    c.name = node;
    c.text = numeric;
    c.textlen = sizeof numeric;
    const long r = h->sock(&c);
    if (r == -ENOENT) return EAI_NONAME;
    if (r == 0) {
      addrinfo numeric_hints{};
      if (hints != nullptr) numeric_hints = *hints;
      numeric_hints.ai_flags |= AI_NUMERICHOST;
      return real(numeric, service, &numeric_hints, res);
    }
  }
  if (h != nullptr && h->on_greenlet() != 0) {
    const auto run = [](void* p) {
      auto* c = static_cast<Call*>(p);
      c->result = real(c->node, c->service, c->hints, c->res);
      c->err = errno;
    };
    if (h->run_blocking(run, &call) != 0) {
      errno = call.err;  // EAI_SYSTEM's detail
      return call.result;
    }
  }
  return real(node, service, hints, res);
}

hostent* gethostbyname(const char* name) {
  static const auto real = next<hostent* (*)(const char*)>("gethostbyname");
  struct Call {
    const char* name;
    hostent* result;
    int herr;
  } call{name, nullptr, 0};
  const tendril_green_hooks* h = hooks();
  char numeric[64];
  if (name != nullptr && h != nullptr && TENDRIL_GREEN_HAS(h, sock)) {
    tendril_green_sock c = sock_call(TENDRIL_GREEN_SOCK_RESOLVE, -1, "gethostbyname");
    c.name = name;
    c.text = numeric;
    c.textlen = sizeof numeric;
    const long r = h->sock(&c);
    if (r == -ENOENT) {
      h_errno = HOST_NOT_FOUND;
      return nullptr;
    }
    if (r == 0) return real(numeric);  // a numeric name is parsed, not looked up
  }
  if (h != nullptr && h->on_greenlet() != 0) {
    const auto run = [](void* p) {
      auto* c = static_cast<Call*>(p);
      c->result = real(c->name);
      c->herr = h_errno;  // h_errno is the pool thread's own
    };
    if (h->run_blocking(run, &call) != 0) {
      h_errno = call.herr;
      return call.result;
    }
  }
  return real(name);
}

}  // extern "C"
