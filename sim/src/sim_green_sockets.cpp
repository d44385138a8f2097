// SPDX-License-Identifier: Apache-2.0
// sim_green_sockets.cpp: the POSIX socket calls of a program linked with tendril::green, carried
// out on the simulated network. Each TCP socket the program makes on a SimHub is a placeholder
// descriptor (a real socket the kernel never binds or connects) that the interposer routes here:
// bind, listen, accept, connect, the reads and writes, shutdown, close, getsockname,
// getpeername and poll act on SimNet's listeners and streams, in virtual time, with its latencies
// and faults, so every choice they make is the hub's (recorded, replayed, explored). Blocking
// calls wait as greenlets do (other greenlets run meanwhile); SO_RCVTIMEO and SO_SNDTIMEO bound
// them in virtual time. Other socket options go to the placeholder, which ignores them.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "../../sched/green/green_hooks.h"
#include "sim_net_impl.hpp"

namespace tendril {

namespace {

bool numeric(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

// from_sockaddr() is the address a sockaddr names (an IPv4-mapped IPv6 address as IPv4).
std::optional<Address> from_sockaddr(const sockaddr* sa, socklen_t len) {
  if (sa == nullptr) return std::nullopt;
  char text[INET6_ADDRSTRLEN] = {};
  if (sa->sa_family == AF_INET && len >= static_cast<socklen_t>(sizeof(sockaddr_in))) {
    sockaddr_in in{};
    std::memcpy(&in, sa, sizeof in);
    ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    return Address{text, ntohs(in.sin_port)};
  }
  if (sa->sa_family == AF_INET6 && len >= static_cast<socklen_t>(sizeof(sockaddr_in6))) {
    sockaddr_in6 in{};
    std::memcpy(&in, sa, sizeof in);
    if (IN6_IS_ADDR_V4MAPPED(&in.sin6_addr)) {
      ::inet_ntop(AF_INET, &in.sin6_addr.s6_addr[12], text, sizeof text);
    } else {
      ::inet_ntop(AF_INET6, &in.sin6_addr, text, sizeof text);
    }
    return Address{text, ntohs(in.sin6_port)};
  }
  return std::nullopt;
}

std::size_t iov_total(const iovec* iov, int count) {
  std::size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  return total;
}

// scatter() copies n bytes from src into iov, starting at byte `at` of the iovecs.
void scatter(const char* src, std::size_t n, const iovec* iov, int count, std::size_t at) {
  for (int i = 0; i < count && n > 0; ++i) {
    if (at >= iov[i].iov_len) {
      at -= iov[i].iov_len;
      continue;
    }
    const std::size_t k = std::min(n, iov[i].iov_len - at);
    std::memcpy(static_cast<char*>(iov[i].iov_base) + at, src, k);
    src += k;
    n -= k;
    at = 0;
  }
}

// gather() is n bytes of iov from byte `at`.
std::string gather(std::size_t n, const iovec* iov, int count, std::size_t at) {
  std::string out;
  out.reserve(n);
  for (int i = 0; i < count && out.size() < n; ++i) {
    if (at >= iov[i].iov_len) {
      at -= iov[i].iov_len;
      continue;
    }
    const std::size_t k = std::min(n - out.size(), iov[i].iov_len - at);
    out.append(static_cast<const char*>(iov[i].iov_base) + at, k);
    at = 0;
  }
  return out;
}

bool loopback(const std::string& host) { return host.starts_with("127.") || host == "::1"; }

}  // namespace

// GreenCalls holds the calls; a friend of SimNet.
struct GreenCalls {
  using Sock = SimNet::GreenSock;

  // deadline() is now + timeout, or none.
  static std::optional<std::int64_t> deadline(SimNet& n, std::optional<Duration> timeout) {
    if (!timeout) return std::nullopt;
    return n.hub_.now_ns() + timeout->count();
  }

  // wait_any() parks the calling greenlet until one of events is set or the deadline passes
  // (false). Call it only when none of them is ready: it clears them first.
  static bool wait_any(SimNet& n, const std::vector<Event*>& events,
                       std::optional<std::int64_t> deadline, const char* reason) {
    SimHub& hub = n.hub_;
    if (deadline && hub.now_ns() >= *deadline) return false;
    const WaitToken token = hub.begin_wait(reason);
    std::vector<std::pair<Event*, LinkId>> links;
    struct Unlink {
      std::vector<std::pair<Event*, LinkId>>& links;
      ~Unlink() {
        for (auto& [event, id] : links) event->unlink(id);
      }
    } unlink{links};
    for (Event* e : events) {
      e->clear();
      links.emplace_back(e, e->rawlink([&hub, token] { hub.schedule(Hub::wake_callback(token)); }));
    }
    return hub.park(token, reason, nullptr, deadline);
  }

  // can_wait() says whether the call may wait: it may not wait when the program asked not to, or
  // outside a greenlet (then it fails with EAGAIN, as a non-blocking call).
  static bool can_wait(SimNet& n, const tendril_green_sock& c) {
    return c.nonblock == 0 && n.hub_.current() != nullptr;
  }

  // write_sockaddr() stores at as the sockaddr of a socket of `domain`. A host that is not
  // numeric (tendril::connect's "sim-client") is named by the name table, or shown as
  // 192.0.2.1 (TEST-NET-1).
  static void write_sockaddr(const SimNet& n, const Address& at, int domain, sockaddr* out,
                             socklen_t* outlen) {
    if (out == nullptr || outlen == nullptr) return;
    std::string host = at.host;
    if (!numeric(host)) host = n.resolve_host(host).value_or("192.0.2.1");
    sockaddr_storage ss{};
    socklen_t len = 0;
    in_addr v4{};
    in6_addr v6{};
    if (::inet_pton(AF_INET, host.c_str(), &v4) == 1 && domain == AF_INET) {
      sockaddr_in in{};
      in.sin_family = AF_INET;
      in.sin_port = htons(at.port);
      in.sin_addr = v4;
      std::memcpy(&ss, &in, sizeof in);
      len = sizeof in;
    } else {
      sockaddr_in6 in{};
      in.sin6_family = AF_INET6;
      in.sin6_port = htons(at.port);
      if (::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        in.sin6_addr.s6_addr[10] = 0xff;
        in.sin6_addr.s6_addr[11] = 0xff;
        std::memcpy(&in.sin6_addr.s6_addr[12], &v4, 4);
      } else if (::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        in.sin6_addr = v6;
      }
      std::memcpy(&ss, &in, sizeof in);
      len = sizeof in;
    }
    std::memcpy(out, &ss, std::min(len, *outlen));
    *outlen = len;
  }

  static long bind(SimNet& n, Sock& s, const tendril_green_sock& c) {
    if (s.bound || s.listener || s.stream) return -EINVAL;
    std::optional<Address> at = from_sockaddr(c.in, c.inlen);
    if (!at) return c.in != nullptr && c.in->sa_family != s.domain ? -EAFNOSUPPORT : -EINVAL;
    *at = n.canonical(*at);
    if (at->port != 0 && n.listeners_.count(at->to_string()) != 0) return -EADDRINUSE;
    s.bound = *at;
    return 0;
  }

  static long listen(SimNet& n, Sock& s) {
    if (s.stream) return -EINVAL;
    if (s.listener) return 0;  // Linux lets a second listen() change the backlog
    const Address at = s.bound.value_or(Address{s.domain == AF_INET6 ? "::" : "0.0.0.0", 0});
    s.listener = n.open_listener(at);
    s.bound = s.listener->address();
    return 0;
  }

  static long accept(SimNet& n, Sock& s, const tendril_green_sock& c) {
    if (!s.listener) return -EINVAL;
    SimNet::Listener& l = *s.listener;
    const std::optional<std::int64_t> until = deadline(n, s.recv_timeout);
    while (l.pending_.empty()) {
      if (!can_wait(n, c)) return -EAGAIN;
      if (!wait_any(n, {&l.acceptable}, until, c.call)) return -EAGAIN;
      if (s.closed) return -EBADF;
    }
    std::unique_ptr<SimNet::Stream> stream = std::move(l.pending_.get_nowait());
    write_sockaddr(n, stream->peer(), s.domain, c.out, c.outlen);
    auto sock = std::make_shared<Sock>();
    sock->seq = n.green_seq_++;
    sock->domain = s.domain;
    sock->bound = stream->local();
    sock->stream = std::move(stream);
    n.green_socks_[c.arg] = std::move(sock);
    return 0;
  }

  static long connect(SimNet& n, Sock& s, const tendril_green_sock& c) {
    if (s.stream) return -EISCONN;
    if (s.listener) return -EINVAL;
    std::optional<Address> to = from_sockaddr(c.in, c.inlen);
    if (!to) return c.in != nullptr && c.in->sa_family != s.domain ? -EAFNOSUPPORT : -EINVAL;
    *to = n.canonical(*to);
    Address client{loopback(to->host)
                       ? (s.domain == AF_INET6 && to->host == "::1" ? "::1" : "127.0.0.1")
                       : "192.0.2.1",
                   0};
    if (s.bound) {
      if (s.bound->host != "0.0.0.0" && s.bound->host != "::") client.host = s.bound->host;
      client.port = s.bound->port;
    }
    if (client.port == 0) client.port = n.next_port_++;
    const std::optional<Duration> timeout = s.send_timeout;
    const std::optional<std::int64_t> until = deadline(n, timeout);
    try {
      s.stream = n.open(client, *to, timeout);
    } catch (const Timeout&) {
      // A partition outlasted SO_SNDTIMEO: Linux's blocking connect then says EINPROGRESS. A
      // Timeout of the program's own (a TimeoutScope) goes on.
      if (until && n.hub_.now_ns() >= *until) return -EINPROGRESS;
      throw;
    }
    s.bound = client;
    return 0;
  }

  static long recv(SimNet& n, Sock& s, const tendril_green_sock& c) {
    if (!s.stream) return -ENOTCONN;
    SimNet::Stream& st = *s.stream;
    SimNet::Pipe& in = st.in();
    const std::size_t total = iov_total(c.iov, c.iovcnt);
    if (total == 0) return 0;
    const bool peek = (c.arg & MSG_PEEK) != 0;
    const bool all = (c.arg & MSG_WAITALL) != 0 && !peek;
    const std::optional<std::int64_t> until = deadline(n, s.recv_timeout);
    std::size_t done = 0;
    const auto partial = [&](long err) { return done > 0 ? static_cast<long>(done) : err; };
    for (;;) {
      // As Linux: bytes that arrived are read first, an EOF that arrived before a reset wins.
      if (!in.buffer.empty()) {
        const std::size_t k = std::min(total - done, in.buffer.size());
        scatter(in.buffer.data(), k, c.iov, c.iovcnt, done);
        done += k;
        if (!peek) {
          in.buffer.erase(0, k);
          if (in.buffer.size() + in.in_flight < n.options_.buffer_bytes) in.writable.set();
        }
        if (!all || done == total) return static_cast<long>(done);
        continue;
      }
      if (in.eof) return static_cast<long>(done);
      if (st.conn()->reset) return partial(-ECONNRESET);
      if (!can_wait(n, c)) return partial(-EAGAIN);
      if (!wait_any(n, {&in.readable}, until, c.call)) return partial(-EAGAIN);
      if (s.closed) return partial(-EBADF);
    }
  }

  static long send(SimNet& n, Sock& s, const tendril_green_sock& c) {
    if (!s.stream) return -ENOTCONN;
    SimNet::Stream& st = *s.stream;
    SimNet::Pipe& out = st.out();
    const std::size_t total = iov_total(c.iov, c.iovcnt);
    const std::size_t capacity = n.options_.buffer_bytes;
    const std::optional<std::int64_t> until = deadline(n, s.send_timeout);
    std::size_t done = 0;
    const auto partial = [&](long err) { return done > 0 ? static_cast<long>(done) : err; };
    for (;;) {
      if (st.conn()->reset) return partial(-ECONNRESET);
      if (out.write_closed) return partial(-EPIPE);
      if (done == total) return static_cast<long>(done);
      const std::size_t used = out.buffer.size() + out.in_flight;
      if (used < capacity) {
        const std::size_t k = std::min(total - done, capacity - used);
        n.send_segment(st.conn(), out, gather(k, c.iov, c.iovcnt, done), false);
        done += k;
        if (c.nonblock != 0) return static_cast<long>(done);  // what fitted, as Linux
        continue;
      }
      if (!can_wait(n, c)) return partial(-EAGAIN);
      if (!wait_any(n, {&out.writable}, until, c.call)) return partial(-EAGAIN);
      if (s.closed) return partial(-EBADF);
    }
  }

  static long shutdown(Sock& s, int how) {
    if (!s.stream) return -ENOTCONN;
    if (how != SHUT_RD && how != SHUT_WR && how != SHUT_RDWR) return -EINVAL;
    s.stream->shutdown(how == SHUT_RD   ? net::Shutdown::read
                       : how == SHUT_WR ? net::Shutdown::write
                                        : net::Shutdown::both);
    return 0;
  }

  static long name(SimNet& n, Sock& s, const tendril_green_sock& c, bool peer) {
    if (peer) {
      if (!s.stream) return -ENOTCONN;
      write_sockaddr(n, s.stream->peer(), s.domain, c.out, c.outlen);
      return 0;
    }
    const Address at = s.stream  ? s.stream->local()
                       : s.bound ? *s.bound
                                 : Address{s.domain == AF_INET6 ? "::" : "0.0.0.0", 0};
    write_sockaddr(n, at, s.domain, c.out, c.outlen);
    return 0;
  }

  // ready() is what poll() reports for a simulated socket.
  static short ready(const SimNet& n, const Sock& s, short events) {
    constexpr short in_bits = POLLIN | POLLRDNORM;
    constexpr short out_bits = POLLOUT | POLLWRNORM;
    if (s.listener) return s.listener->pending_.empty() ? 0 : static_cast<short>(events & in_bits);
    if (!s.stream) return static_cast<short>((events & out_bits) | POLLHUP);  // as Linux
    const SimNet::Pipe& in = s.stream->in();
    const SimNet::Pipe& out = s.stream->out();
    if (s.stream->conn()->reset) {
      return static_cast<short>((events & (in_bits | out_bits)) | POLLERR | POLLHUP);
    }
    short r = 0;
    if (!in.buffer.empty() || in.eof) r |= in_bits;
    if (in.eof) r |= POLLRDHUP;
    if (out.write_closed || out.buffer.size() + out.in_flight < n.options_.buffer_bytes) {
      r |= out_bits;
    }
    r &= events;
    if (in.eof && out.write_closed) r |= POLLHUP;
    return r;
  }

  static long poll(SimNet& n, const tendril_green_sock& c) {
    const std::optional<std::int64_t> until =
        c.timeout_ns < 0 ? std::nullopt : std::optional(n.hub_.now_ns() + c.timeout_ns);
    for (;;) {
      std::vector<pollfd> real;
      std::vector<std::size_t> real_at;
      std::vector<Event*> events;
      std::vector<std::shared_ptr<Sock>> keep;  // alive while this poll waits on their events
      long count = 0;
      for (std::size_t i = 0; i < c.nfds; ++i) {
        pollfd& p = c.fds[i];
        p.revents = 0;
        if (p.fd < 0) continue;
        auto it = n.green_socks_.find(p.fd);
        if (it == n.green_socks_.end()) {
          real.push_back(pollfd{p.fd, p.events, 0});
          real_at.push_back(i);
          continue;
        }
        const Sock& s = *it->second;
        keep.push_back(it->second);
        p.revents = ready(n, s, p.events);
        if (p.revents != 0) {
          ++count;
        } else if (s.listener) {
          events.push_back(&s.listener->acceptable);
        } else if (s.stream) {
          // Arrivals, EOFs and resets set readable; room to write sets writable.
          events.push_back(&s.stream->in().readable);
          if ((p.events & (POLLOUT | POLLWRNORM)) != 0) events.push_back(&s.stream->out().writable);
        }
      }
      // Real descriptors are looked at, never waited on: they change on the kernel's schedule,
      // not the simulation's.
      if (!real.empty() && ::poll(real.data(), real.size(), 0) > 0) {
        for (std::size_t k = 0; k < real.size(); ++k) {
          c.fds[real_at[k]].revents = real[k].revents;
          if (real[k].revents != 0) ++count;
        }
      }
      if (count > 0 || c.timeout_ns == 0) return count;
      if (n.hub_.current() == nullptr) return 0;
      std::sort(events.begin(), events.end());
      events.erase(std::unique(events.begin(), events.end()), events.end());
      if (!wait_any(n, events, until, c.call)) return 0;
    }
  }

  static long resolve(const SimNet& n, const tendril_green_sock& c) {
    if (c.name == nullptr) return -EINVAL;
    const std::optional<std::string> address = n.resolve_host(c.name);
    if (!address) return -ENOENT;
    if (c.text == nullptr || c.textlen <= address->size()) return -ENAMETOOLONG;
    std::memcpy(c.text, address->c_str(), address->size() + 1);
    return 0;
  }

  static long call(SimNet& n, tendril_green_sock& c) {
    switch (c.op) {
      case TENDRIL_GREEN_SOCK_OPEN: {
        if (c.arg != AF_INET && c.arg != AF_INET6) return -EAFNOSUPPORT;
        auto sock = std::make_shared<Sock>();
        sock->seq = n.green_seq_++;
        sock->domain = c.arg;
        n.green_socks_[c.fd] = std::move(sock);  // a stale one of the same number goes
        return 0;
      }
      case TENDRIL_GREEN_SOCK_POLL:
        return poll(n, c);
      case TENDRIL_GREEN_SOCK_RESOLVE:
        return resolve(n, c);
      default:
        break;
    }
    auto it = n.green_socks_.find(c.fd);
    // A descriptor of another network (an earlier run's, before SimHub::reset) is closed here.
    if (it == n.green_socks_.end()) return -EBADF;
    const std::shared_ptr<Sock> keep = it->second;  // a close meanwhile must not free it
    Sock& s = *keep;
    switch (c.op) {
      case TENDRIL_GREEN_SOCK_BIND:
        return bind(n, s, c);
      case TENDRIL_GREEN_SOCK_LISTEN:
        return listen(n, s);
      case TENDRIL_GREEN_SOCK_ACCEPT:
        return accept(n, s, c);
      case TENDRIL_GREEN_SOCK_CONNECT:
        return connect(n, s, c);
      case TENDRIL_GREEN_SOCK_RECV:
        return recv(n, s, c);
      case TENDRIL_GREEN_SOCK_SEND:
        return send(n, s, c);
      case TENDRIL_GREEN_SOCK_SHUTDOWN:
        return shutdown(s, c.arg);
      case TENDRIL_GREEN_SOCK_TIMEOUT: {
        std::optional<Duration> t;
        if (c.timeout_ns > 0) t = Duration(c.timeout_ns);
        (c.arg == SO_RCVTIMEO ? s.recv_timeout : s.send_timeout) = t;
        return 0;
      }
      case TENDRIL_GREEN_SOCK_CLOSE:
        n.green_socks_.erase(it);
        // Calls waiting on it wake, see `closed` and fail with EBADF; the last one out closes it.
        s.closed = true;
        if (s.listener) s.listener->acceptable.set();
        if (s.stream) {
          s.stream->in().readable.set();
          s.stream->out().writable.set();
        }
        return 0;
      case TENDRIL_GREEN_SOCK_SOCKNAME:
        return name(n, s, c, false);
      case TENDRIL_GREEN_SOCK_PEERNAME:
        return name(n, s, c, true);
      default:
        return -ENOSYS;
    }
  }
};

long SimNet::green_socket(tendril_green_sock& call) {
  try {
    return GreenCalls::call(*this, call);
  } catch (const std::system_error& e) {
    // SimNet's own errors (refused, address in use) carry the errno the call reports.
    return e.code().category() == std::generic_category() ? -e.code().value() : -EIO;
  } catch (...) {
    switch (call.op) {
      case TENDRIL_GREEN_SOCK_OPEN:
      case TENDRIL_GREEN_SOCK_BIND:
      case TENDRIL_GREEN_SOCK_LISTEN:
      case TENDRIL_GREEN_SOCK_SHUTDOWN:
      case TENDRIL_GREEN_SOCK_SOCKNAME:
      case TENDRIL_GREEN_SOCK_PEERNAME:
      case TENDRIL_GREEN_SOCK_TIMEOUT:
        // libc declares these calls noexcept: an exception (a replay's Divergence drawn by a
        // shutdown's latency) cannot leave them, so it ends the run instead, as its failure.
        hub_.fail_run(std::current_exception());
        return -EIO;
      default:
        throw;  // the blocking calls: GreenletExit, a TimeoutScope's Timeout, a Divergence
    }
  }
}

void SimNet::add_host(const std::string& name, const std::string& address) {
  if (name.empty()) throw UsageError("tendril::SimNet::add_host: an empty name");
  if (!numeric(address)) {
    throw UsageError("tendril::SimNet::add_host: '" + address + "' (for '" + name +
                     "') is not a numeric IPv4 or IPv6 address");
  }
  hosts_[name] = address;
}

std::string SimNet::resolve(const std::string& host) {
  std::optional<std::string> address = resolve_host(host);
  if (!address) net::throw_unresolved(host, EAI_NONAME);
  return *address;
}

std::optional<std::string> SimNet::resolve_host(const std::string& name) const {
  if (numeric(name)) return name;
  auto it = hosts_.find(name);
  if (it == hosts_.end()) return std::nullopt;
  return it->second;
}

}  // namespace tendril
