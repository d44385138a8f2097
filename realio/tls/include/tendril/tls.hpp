// SPDX-License-Identifier: Apache-2.0
// tendril/tls.hpp: TLS over tendril streams, with OpenSSL (eventlet's wrap_ssl, gevent's ssl
// module). The TLS engine works on memory buffers and the bytes travel over a tendril::Stream, so
// the handshake, reads, writes and shutdown are cooperative (only the calling greenlet waits) and
// work on both hubs: on LibevHub over real sockets, on SimHub over the simulated network, in
// virtual time, under exploration and with its faults. Link tendril::tls.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#include "tendril/net.hpp"

typedef struct ssl_ctx_st SSL_CTX;  // NOLINT: OpenSSL's own declaration

namespace tendril {

// TlsError is a failed handshake, a peer that does not speak TLS, a certificate that does not
// verify, or a connection closed in the middle of a record. Its message names the call, the peer
// and OpenSSL's reason, e.g. "tendril::wrap_tls: handshake with 127.0.0.1:443 failed: certificate
// verify failed (self-signed certificate)". Errors of the connection underneath (a reset) are the
// Stream's own std::system_error; timeouts are tendril::Timeout.
struct TlsError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// TlsIdentity is a certificate and its private key, both PEM text.
struct TlsIdentity {
  std::string certificate_pem;
  std::string private_key_pem;
};

// self_signed_identity() makes a fresh P-256 key and a self-signed certificate for host (its
// subject name and its subjectAltName: an IP address for a numeric host, else a DNS name), valid
// from 1970 to 2100 so that a virtual clock verifies it too. For tests and examples: a client
// trusts it with TlsContext::trust(identity.certificate_pem). Throws TlsError if OpenSSL fails.
TlsIdentity self_signed_identity(const std::string& host);

class TlsStream;
class TlsContext;
TlsStream wrap_tls(Stream stream, const TlsContext& context, const std::string& host = "",
                   std::optional<Duration> timeout = std::nullopt);

// TlsContext is the configuration of one side, shared by its connections (OpenSSL's SSL_CTX):
// TLS 1.2 or later. Copies share the same context.
class TlsContext {
 public:
  // client() verifies the server's certificate chain against the system's trusted certificates
  // and its name against the host given to wrap_tls().
  static TlsContext client();
  // server() presents identity. Throws TlsError for a certificate or key that does not parse or
  // do not match.
  static TlsContext server(const TlsIdentity& identity);
  // trust() makes the context verify peers against these certificates (PEM, one or more) instead
  // of the system's. Throws TlsError for text that holds no certificate.
  TlsContext& trust(const std::string& certificates_pem);
  // verify_peer(false) makes a client accept any server certificate (never in production).
  TlsContext& verify_peer(bool on);
  bool is_server() const noexcept { return server_; }
  SSL_CTX* native() const noexcept { return ctx_.get(); }

 private:
  friend class TlsStream;
  friend TlsStream wrap_tls(Stream, const TlsContext&, const std::string&, std::optional<Duration>);
  TlsContext(std::shared_ptr<SSL_CTX> ctx, bool server) : ctx_(std::move(ctx)), server_(server) {}
  std::shared_ptr<SSL_CTX> ctx_;
  bool server_;
};

// TlsStream is one TLS connection over a Stream; movable, closed on destruction (without a
// close_notify: call shutdown() first for a clean close).
class TlsStream {
 public:
  TlsStream(TlsStream&&) noexcept;
  TlsStream& operator=(TlsStream&&) noexcept;
  ~TlsStream();

  // recv() returns up to n bytes of plaintext as soon as a record brings some, or "" when the
  // peer has closed: after its close_notify, or at an EOF between records (a "ragged" EOF, which
  // Python's ssl suppresses by default too). An EOF in the middle of a record throws TlsError;
  // the timeout bounds the whole call (else the stream's own, see Stream::set_timeout).
  std::string recv(std::size_t n, std::optional<Duration> timeout = std::nullopt);
  // sendall() encrypts and sends all of data.
  void sendall(std::string_view data, std::optional<Duration> timeout = std::nullopt);
  // shutdown() sends close_notify (and shuts the stream's write side); the peer's recv() then
  // returns "". Idempotent.
  void shutdown();
  // close() releases the connection (idempotent).
  void close() noexcept;
  bool is_open() const noexcept;
  Address peer() const;
  // version() is the protocol agreed ("TLSv1.3"); cipher() the cipher suite.
  std::string version() const;
  std::string cipher() const;
  // stream() is the Stream underneath (for set_timeout, select()).
  Stream& stream();

 private:
  struct Impl;
  explicit TlsStream(std::unique_ptr<Impl> impl);
  friend TlsStream wrap_tls(Stream, const TlsContext&, const std::string&, std::optional<Duration>);
  std::unique_ptr<Impl> impl_;
};

// wrap_tls() is eventlet's wrap_ssl: it runs the handshake over stream, as the context's side
// (client or server), and returns the TLS connection. A client checks the server's certificate
// against host (default: the stream's peer host) and sends it as SNI. The timeout bounds the
// handshake. A failed handshake closes the stream and throws TlsError (a wrong certificate, a
// peer that sends something other than TLS, a peer that closes during the handshake), the
// Stream's std::system_error (a reset) or Timeout. Call it from a greenlet.
TlsStream wrap_tls(Stream stream, const TlsContext& context, const std::string& host,
                   std::optional<Duration> timeout);

}  // namespace tendril
