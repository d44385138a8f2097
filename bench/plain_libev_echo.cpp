// SPDX-License-Identifier: Apache-2.0
// plain_libev_echo PORT: the ceiling of bench/net.sh's echo benchmark: an echo server written
// directly on libev callbacks (no greenlets), non-blocking sockets, one ev_io per connection that
// stays started. Listens on 127.0.0.1:PORT, prints "serving on 127.0.0.1:PORT" and runs until
// SIGTERM or SIGINT. The only program outside realio/ that includes <ev.h>: it is libev, bare.
#include <arpa/inet.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

struct Conn {
  ev_io watcher;        // first member: the watcher pointer is the Conn pointer
  std::string pending;  // bytes read but not yet written back (the peer's window was full)
};

void close_conn(struct ev_loop* loop, Conn* c) {
  ev_io_stop(loop, &c->watcher);
  ::close(c->watcher.fd);
  delete c;
}

void on_conn(struct ev_loop* loop, ev_io* w, int revents) {
  auto* c = reinterpret_cast<Conn*>(w);
  if ((revents & EV_WRITE) != 0) {
    const ssize_t sent = ::send(w->fd, c->pending.data(), c->pending.size(), MSG_NOSIGNAL);
    if (sent < 0 && errno != EAGAIN && errno != EINTR) return close_conn(loop, c);
    if (sent > 0) c->pending.erase(0, static_cast<std::size_t>(sent));
    if (c->pending.empty()) {
      ev_io_stop(loop, w);
      ev_io_set(w, w->fd, EV_READ);
      ev_io_start(loop, w);
    }
    return;
  }
  char buf[4096];
  const ssize_t got = ::recv(w->fd, buf, sizeof buf, 0);
  if (got < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (got <= 0) return close_conn(loop, c);
  const ssize_t sent = ::send(w->fd, buf, static_cast<std::size_t>(got), MSG_NOSIGNAL);
  if (sent < 0 && errno != EAGAIN && errno != EINTR) return close_conn(loop, c);
  const std::size_t done = sent < 0 ? 0 : static_cast<std::size_t>(sent);
  if (done < static_cast<std::size_t>(got)) {
    // Rare on loopback with small messages: keep the rest and wait until writable.
    c->pending.assign(buf + done, static_cast<std::size_t>(got) - done);
    ev_io_stop(loop, w);
    ev_io_set(w, w->fd, EV_WRITE);
    ev_io_start(loop, w);
  }
}

void on_accept(struct ev_loop* loop, ev_io* w, int) {
  for (;;) {
    const int fd = ::accept4(w->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN: drained; anything else: try again on the next event
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new Conn;
    ev_io_init(&c->watcher, on_conn, fd, EV_READ);
    ev_io_start(loop, &c->watcher);
  }
}

void on_stop(struct ev_loop* loop, ev_signal*, int) { ev_break(loop, EVBREAK_ALL); }

}  // namespace

int main(int argc, char** argv) {
  char* end = nullptr;
  const long port = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
  if (argc != 2 || *end != '\0' || port < 0 || port > 65535) {
    std::fprintf(stderr, "usage: plain_libev_echo PORT   (0-65535; 0 picks a free port)\n");
    return 2;
  }
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<std::uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof sa;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 || ::listen(fd, 1024) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    std::fprintf(stderr, "plain_libev_echo: cannot listen on 127.0.0.1:%ld: %s\n", port,
                 std::strerror(errno));
    return 1;
  }
  struct ev_loop* loop = ev_default_loop(EVFLAG_AUTO);
  ev_io accept_watcher;
  ev_io_init(&accept_watcher, on_accept, fd, EV_READ);
  ev_io_start(loop, &accept_watcher);
  ev_signal term, intr;
  ev_signal_init(&term, on_stop, SIGTERM);
  ev_signal_start(loop, &term);
  ev_signal_init(&intr, on_stop, SIGINT);
  ev_signal_start(loop, &intr);
  std::printf("serving on 127.0.0.1:%d\n", ntohs(sa.sin_port));
  std::fflush(stdout);
  ev_run(loop, 0);
  ::close(fd);
  return 0;
}
