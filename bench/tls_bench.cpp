// SPDX-License-Identifier: Apache-2.0
// tls_bench: the programs of bench/tls_report.py (run by bench/net.sh), TLS on loopback.
//   tls_bench cert DIR                      writes DIR/cert.pem and DIR/key.pem (localhost)
//   tls_bench tendril PORT DIR              TLS echo server: LibevHub, StreamServer, wrap_tls
//   tls_bench plain PORT DIR                TLS echo server: libev callbacks and non-blocking
//                                           OpenSSL on the socket (no greenlets: the ceiling)
//   tls_bench echo PORT CONNS SECONDS BYTES load: CONNS TLS connections, each sending BYTES and
//                                           reading them back in a loop; prints "requests N"
//   tls_bench handshakes PORT CONNS SECONDS load: CONNS greenlets each connecting, handshaking
//                                           and closing in a loop; prints "handshakes N"
// Servers print "serving on 127.0.0.1:PORT" and run until SIGTERM or SIGINT. The load runs on a
// LibevHub with tendril::tls (the same client for every server) and prints its count after
// SECONDS of wall time.
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/realio.hpp"
#include "tendril/tls.hpp"

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::cerr << "tls_bench: cannot read " << path << "\n";
    std::exit(1);
  }
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

tendril::TlsIdentity load_identity(const std::string& dir) {
  return {read_file(dir + "/cert.pem"), read_file(dir + "/key.pem")};
}

int serve_tendril(long port, const std::string& dir) {
  const tendril::TlsContext context = tendril::TlsContext::server(load_identity(dir));
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    tendril::StreamServer server(
        tendril::listen({"127.0.0.1", static_cast<std::uint16_t>(port)}),
        [&](tendril::Stream& s) {
          try {
            tendril::TlsStream tls = tendril::wrap_tls(std::move(s), context);
            for (std::string part; !(part = tls.recv(16384)).empty();) tls.sendall(part);
          } catch (const tendril::TlsError&) {
          } catch (const std::system_error&) {
          }
        },
        100000);
    hub.signal_handler(SIGINT, [&] { server.stop(std::chrono::seconds(1)); });
    hub.signal_handler(SIGTERM, [&] { server.stop(std::chrono::seconds(1)); });
    std::cout << "serving on " << server.address().to_string() << std::endl;
    server.serve_forever();
  });
  return 0;
}

// ---- The plain server: libev callbacks, OpenSSL on non-blocking sockets ----------------------

SSL_CTX* plain_ctx = nullptr;

struct Conn {
  ev_io watcher;  // first member: the watcher pointer is the Conn pointer
  SSL* ssl = nullptr;
  std::string pending;  // plaintext read but not yet written back
};

void close_conn(struct ev_loop* loop, Conn* c) {
  ev_io_stop(loop, &c->watcher);
  SSL_free(c->ssl);
  ::close(c->watcher.fd);
  delete c;
}

// want() makes the watcher wait for what OpenSSL needs next.
void want(struct ev_loop* loop, Conn* c, int events) {
  if (c->watcher.events == events) return;
  ev_io_stop(loop, &c->watcher);
  ev_io_set(&c->watcher, c->watcher.fd, events);
  ev_io_start(loop, &c->watcher);
}

void on_conn(struct ev_loop* loop, ev_io* w, int) {
  auto* c = reinterpret_cast<Conn*>(w);
  ERR_clear_error();
  if (!SSL_is_init_finished(c->ssl)) {
    const int r = SSL_do_handshake(c->ssl);
    if (r == 1) return want(loop, c, EV_READ);
    const int err = SSL_get_error(c->ssl, r);
    if (err == SSL_ERROR_WANT_READ) return want(loop, c, EV_READ);
    if (err == SSL_ERROR_WANT_WRITE) return want(loop, c, EV_WRITE);
    return close_conn(loop, c);
  }
  for (;;) {
    if (!c->pending.empty()) {
      const int r = SSL_write(c->ssl, c->pending.data(), static_cast<int>(c->pending.size()));
      if (r <= 0) {
        const int err = SSL_get_error(c->ssl, r);
        if (err == SSL_ERROR_WANT_WRITE) return want(loop, c, EV_WRITE);
        if (err == SSL_ERROR_WANT_READ) return want(loop, c, EV_READ);
        return close_conn(loop, c);
      }
      c->pending.erase(0, static_cast<std::size_t>(r));
      continue;
    }
    char buf[16384];
    const int r = SSL_read(c->ssl, buf, sizeof buf);
    if (r <= 0) {
      const int err = SSL_get_error(c->ssl, r);
      if (err == SSL_ERROR_WANT_READ) return want(loop, c, EV_READ);
      if (err == SSL_ERROR_WANT_WRITE) return want(loop, c, EV_WRITE);
      return close_conn(loop, c);
    }
    c->pending.assign(buf, static_cast<std::size_t>(r));
  }
}

void on_accept(struct ev_loop* loop, ev_io* w, int) {
  for (;;) {
    const int fd = ::accept4(w->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    auto* c = new Conn;
    c->ssl = SSL_new(plain_ctx);
    SSL_set_fd(c->ssl, fd);
    SSL_set_accept_state(c->ssl);
    ev_io_init(&c->watcher, on_conn, fd, EV_READ);
    ev_io_start(loop, &c->watcher);
  }
}

void on_signal(struct ev_loop* loop, ev_signal*, int) { ev_break(loop, EVBREAK_ALL); }

int serve_plain(long port, const std::string& dir) {
  static const tendril::TlsContext context = tendril::TlsContext::server(load_identity(dir));
  plain_ctx = context.native();
  std::signal(SIGPIPE, SIG_IGN);  // OpenSSL's socket BIO writes without MSG_NOSIGNAL
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd, 4096) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::cerr << "tls_bench plain: listen: " << std::strerror(errno) << "\n";
    return 1;
  }
  struct ev_loop* loop = ev_default_loop(0);
  ev_io accept_watcher;
  ev_io_init(&accept_watcher, on_accept, fd, EV_READ);
  ev_io_start(loop, &accept_watcher);
  ev_signal sigint;
  ev_signal sigterm;
  ev_signal_init(&sigint, on_signal, SIGINT);
  ev_signal_init(&sigterm, on_signal, SIGTERM);
  ev_signal_start(loop, &sigint);
  ev_signal_start(loop, &sigterm);
  std::cout << "serving on 127.0.0.1:" << ntohs(a.sin_port) << std::endl;
  ev_run(loop, 0);
  return 0;
}

// ---- The load --------------------------------------------------------------------------------

int load(bool echo, long port, long conns, long seconds, long bytes) {
  tendril::TlsContext client = tendril::TlsContext::client();
  client.verify_peer(false);  // the servers' certificate is the benchmark's own
  const std::string message(static_cast<std::size_t>(bytes), 'x');
  long count = 0;
  long errors = 0;
  tendril::LibevHub hub;
  tendril::run(hub, [&] {
    const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    const tendril::Address to{"127.0.0.1", static_cast<std::uint16_t>(port)};
    std::vector<tendril::Ref<tendril::Greenlet>> workers;
    for (long i = 0; i < conns; ++i) {
      workers.push_back(tendril::spawn([&] {
        try {
          if (echo) {
            tendril::TlsStream tls = tendril::wrap_tls(tendril::connect(to), client, "localhost");
            while (std::chrono::steady_clock::now() < end) {
              tls.sendall(message);
              std::size_t got = 0;
              while (got < message.size()) {
                const std::string part = tls.recv(message.size() - got);
                if (part.empty()) throw std::runtime_error("the server closed");
                got += part.size();
              }
              ++count;
            }
          } else {
            while (std::chrono::steady_clock::now() < end) {
              tendril::TlsStream tls = tendril::wrap_tls(tendril::connect(to), client, "localhost");
              ++count;
            }
          }
        } catch (const std::exception& e) {
          if (errors++ == 0) std::cerr << "tls_bench: " << e.what() << "\n";
        }
      }));
    }
    tendril::joinall(workers);
  });
  std::cout << (echo ? "requests " : "handshakes ") << count << " errors " << errors << std::endl;
  return errors == 0 ? 0 : 1;
}

long parse(const char* text, long lo, long hi) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < lo || v > hi) {
    std::cerr << "tls_bench: '" << text << "' is not a number from " << lo << " to " << hi << "\n";
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "cert" && argc == 3) {
    const tendril::TlsIdentity id = tendril::self_signed_identity("localhost");
    std::ofstream(std::string(argv[2]) + "/cert.pem") << id.certificate_pem;
    std::ofstream(std::string(argv[2]) + "/key.pem") << id.private_key_pem;
    return 0;
  }
  if ((mode == "tendril" || mode == "plain") && argc == 4) {
    const long port = parse(argv[2], 0, 65535);
    return mode == "tendril" ? serve_tendril(port, argv[3]) : serve_plain(port, argv[3]);
  }
  if (mode == "echo" && argc == 6) {
    return load(true, parse(argv[2], 1, 65535), parse(argv[3], 1, 10000), parse(argv[4], 1, 600),
                parse(argv[5], 1, 65536));
  }
  if (mode == "handshakes" && argc == 5) {
    return load(false, parse(argv[2], 1, 65535), parse(argv[3], 1, 10000), parse(argv[4], 1, 600),
                1);
  }
  std::cerr << "usage: tls_bench cert DIR | tendril PORT DIR | plain PORT DIR |\n"
               "       echo PORT CONNS SECONDS BYTES | handshakes PORT CONNS SECONDS\n";
  return 2;
}
