// SPDX-License-Identifier: Apache-2.0
// hello_http [PORT]: the seed's hello-world HTTP/1.0 server (seeds::hello_http_handler) on the
// real hub: each request sleeps 0.1 s (cooperatively) and answers "Hello World". With 200
// concurrent clients (`ab -n 200 -c 200 http://127.0.0.1:8000/`) all are answered in about
// 0.1 s, not 20 s. Stop it with Ctrl-C (SIGINT) or SIGTERM, which close the server cleanly.
//
// hello_http --hub=sim [CLIENTS]: the same server on the simulated hub, loaded by CLIENTS
// (default 200) concurrent simulated clients; prints how many were answered and the virtual time.
//
// hello_http --tls PORT CERT_FILE: the same server over HTTPS (tendril::tls) on 127.0.0.1:PORT (0:
// a free port),
// with a fresh self-signed certificate for "localhost" written to CERT_FILE, so that
// `curl --cacert CERT_FILE https://localhost:PORT/` verifies it.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <string>

#include "seeds.hpp"
#include "tendril/net.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"
#ifdef HELLO_HTTP_TLS
#include "tendril/tls.hpp"
#endif

namespace {

long parse(const char* text, long max) {
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  return (end == text || *end != '\0' || v <= 0 || v > max) ? -1 : v;
}

int usage() {
  std::cerr << "usage: hello_http [PORT]            (PORT: 1-65535, default 8000)\n"
               "       hello_http --hub=sim [CLIENTS] (CLIENTS: 1-100000, default 200)\n"
               "       hello_http --tls PORT CERT_FILE (HTTPS; writes its certificate there)\n";
  return 2;
}

// serve() runs handler on 127.0.0.1:port until SIGINT or SIGTERM.
int serve(long port, const std::function<void(tendril::Stream&)>& handler, const char* scheme) {
  tendril::LibevHub hub;
  try {
    tendril::run(hub, [&] {
      tendril::StreamServer server(tendril::listen({"127.0.0.1", static_cast<std::uint16_t>(port)}),
                                   handler, 10000);
      hub.signal_handler(SIGINT, [&] { server.stop(std::chrono::seconds(1)); });
      hub.signal_handler(SIGTERM, [&] { server.stop(std::chrono::seconds(1)); });
      std::cout << "serving on " << scheme << "://" << server.address().to_string()
                << "/ (Ctrl-C stops)" << std::endl;
      server.serve_forever();
    });
  } catch (const std::exception& e) {
    std::cerr << "hello_http: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

#ifdef HELLO_HTTP_TLS
// serve_https() is the same server over TLS: each connection's handshake, then the seed's
// exchange over the TLS stream. A client that fails the handshake is told on stderr and dropped.
int serve_https(long port, const char* cert_file) {
  const tendril::TlsIdentity identity = tendril::self_signed_identity("localhost");
  std::ofstream(cert_file) << identity.certificate_pem;
  if (!std::ifstream(cert_file)) {
    std::cerr << "hello_http: cannot write the certificate to " << cert_file << "\n";
    return 1;
  }
  const tendril::TlsContext context = tendril::TlsContext::server(identity);
  return serve(
      port,
      [&context](tendril::Stream& s) {
        try {
          tendril::TlsStream tls =
              tendril::wrap_tls(std::move(s), context, "", std::chrono::seconds(10));
          std::string request;
          while (request.find("\r\n\r\n") == std::string::npos && request.size() <= 65536) {
            std::string part = tls.recv(4096, std::chrono::seconds(10));
            if (part.empty()) return;
            request += part;
          }
          tendril::sleep(std::chrono::milliseconds(100));
          tls.sendall(
              "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 12\r\n\r\n"
              "Hello World\n");
          tls.shutdown();
        } catch (const tendril::TlsError& e) {
          std::cerr << "hello_http: " << e.what() << "\n";
        }
      },
      "https");
}
#endif

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 2 && std::string(argv[1]) == "--hub=sim") {
    const long clients = argc == 3 ? parse(argv[2], 100000) : argc == 2 ? 200 : -1;
    if (clients < 0) return usage();
    tendril::SimHub hub;
    const seeds::HttpLoad load = seeds::hello_http_load(std::cout, hub, static_cast<int>(clients));
    return load.failed == 0 ? 0 : 1;
  }
  if (argc >= 2 && std::string(argv[1]) == "--tls") {
    // Port 0: a free one (the "serving on" line says which).
    const long port = argc != 4 ? -1 : std::string(argv[2]) == "0" ? 0 : parse(argv[2], 65535);
    if (port < 0) return usage();
#ifdef HELLO_HTTP_TLS
    return serve_https(port, argv[3]);
#else
    std::cerr << "hello_http: built without tendril::tls (OpenSSL 3: tests/install-deps.sh)\n";
    return 2;
#endif
  }
  const long port = argc == 2 ? parse(argv[1], 65535) : argc == 1 ? 8000 : -1;
  if (port < 0) return usage();
  return serve(port, seeds::hello_http_handler, "http");
}
