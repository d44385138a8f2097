// SPDX-License-Identifier: Apache-2.0
// tls.cpp: TLS over tendril::Stream with OpenSSL's memory BIOs. OpenSSL never touches a socket:
// what it writes to its outgoing BIO is sent with Stream::sendall, and what Stream::recv brings
// is written to its incoming BIO, so every wait is a greenlet's and the same code runs over real
// sockets (LibevHub) and the simulated network (SimHub). Incoming bytes are also followed record
// by record (5-byte headers), so that an EOF can be told apart: between records it is the peer's
// close ("" as Python's ssl with suppress_ragged_eofs), inside one it is an error.
#include "tendril/tls.hpp"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

namespace tendril {
namespace {

// openssl_reason() is the oldest error OpenSSL queued on this thread, and empties the queue.
std::string openssl_reason() {
  const unsigned long e = ::ERR_get_error();
  ::ERR_clear_error();
  if (e == 0) return "no reason given";
  const char* reason = ::ERR_reason_error_string(e);
  return reason != nullptr ? reason : "error " + std::to_string(e);
}

[[noreturn]] void fail(const std::string& what) { throw TlsError(what + ": " + openssl_reason()); }

template <class T, void (*Free)(T*)>
struct Freer {
  void operator()(T* p) const noexcept { Free(p); }
};
using Pkey = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, ::EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Freer<X509, ::X509_free>>;
using Bio = std::unique_ptr<BIO, Freer<BIO, ::BIO_free_all>>;

std::string pem_of(const std::function<int(BIO*)>& write) {
  Bio bio(::BIO_new(BIO_s_mem()));
  if (!bio || write(bio.get()) != 1) fail("tendril::self_signed_identity: PEM encoding failed");
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

bool numeric_host(const std::string& host) {
  unsigned char buf[16];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

}  // namespace

TlsIdentity self_signed_identity(const std::string& host) {
  const char* what = "tendril::self_signed_identity";
  Pkey key(::EVP_EC_gen("P-256"));
  if (!key) fail(std::string(what) + ": key generation failed");
  Cert cert(::X509_new());
  if (!cert) fail(std::string(what) + ": X509_new failed");
  ::X509_set_version(cert.get(), 2);
  ::ASN1_INTEGER_set(::X509_get_serialNumber(cert.get()), 1);
  // Valid from 1970 to 2100: a virtual clock (SimHub with tendril::green starts in 2000) verifies
  // it as a real one does, and nothing here reads the clock.
  ::ASN1_TIME_set(::X509_getm_notBefore(cert.get()), 0);
  ::ASN1_TIME_set(::X509_getm_notAfter(cert.get()), 4102444800);
  X509_NAME* name = ::X509_get_subject_name(cert.get());
  ::X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>(host.c_str()), -1, -1, 0);
  ::X509_set_issuer_name(cert.get(), name);
  ::X509_set_pubkey(cert.get(), key.get());
  const std::string san = (numeric_host(host) ? "IP:" : "DNS:") + host;
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  X509_EXTENSION* ext = ::X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str());
  if (ext == nullptr) fail(std::string(what) + ": bad host '" + host + "'");
  ::X509_add_ext(cert.get(), ext, -1);
  ::X509_EXTENSION_free(ext);
  if (::X509_sign(cert.get(), key.get(), ::EVP_sha256()) == 0)
    fail(std::string(what) + ": signing");
  TlsIdentity out;
  out.certificate_pem = pem_of([&](BIO* b) { return ::PEM_write_bio_X509(b, cert.get()); });
  out.private_key_pem = pem_of([&](BIO* b) {
    return ::PEM_write_bio_PrivateKey(b, key.get(), nullptr, nullptr, 0, nullptr, nullptr);
  });
  return out;
}

namespace {

std::shared_ptr<SSL_CTX> new_context(bool server) {
  SSL_CTX* ctx = ::SSL_CTX_new(server ? ::TLS_server_method() : ::TLS_client_method());
  if (ctx == nullptr) fail("tendril::TlsContext: SSL_CTX_new failed");
  ::SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  return std::shared_ptr<SSL_CTX>(ctx, ::SSL_CTX_free);
}

}  // namespace

TlsContext TlsContext::client() {
  std::shared_ptr<SSL_CTX> ctx = new_context(false);
  ::SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (::SSL_CTX_set_default_verify_paths(ctx.get()) != 1) ::ERR_clear_error();
  return TlsContext(std::move(ctx), false);
}

TlsContext TlsContext::server(const TlsIdentity& identity) {
  std::shared_ptr<SSL_CTX> ctx = new_context(true);
  Bio cert_bio(::BIO_new_mem_buf(identity.certificate_pem.data(),
                                 static_cast<int>(identity.certificate_pem.size())));
  Cert cert(::PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  if (!cert) fail("tendril::TlsContext::server: the certificate does not parse");
  Bio key_bio(::BIO_new_mem_buf(identity.private_key_pem.data(),
                                static_cast<int>(identity.private_key_pem.size())));
  Pkey key(::PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) fail("tendril::TlsContext::server: the private key does not parse");
  if (::SSL_CTX_use_certificate(ctx.get(), cert.get()) != 1 ||
      ::SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1 ||
      ::SSL_CTX_check_private_key(ctx.get()) != 1) {
    fail("tendril::TlsContext::server: the key does not match the certificate");
  }
  return TlsContext(std::move(ctx), true);
}

TlsContext& TlsContext::trust(const std::string& certificates_pem) {
  Bio bio(::BIO_new_mem_buf(certificates_pem.data(), static_cast<int>(certificates_pem.size())));
  X509_STORE* store = ::X509_STORE_new();
  int count = 0;
  while (X509* c = ::PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    ::X509_STORE_add_cert(store, c);
    ::X509_free(c);
    ++count;
  }
  ::ERR_clear_error();  // the end of the text
  if (count == 0) {
    ::X509_STORE_free(store);
    throw TlsError("tendril::TlsContext::trust: the text holds no PEM certificate");
  }
  ::SSL_CTX_set_cert_store(ctx_.get(), store);
  return *this;
}

TlsContext& TlsContext::verify_peer(bool on) {
  ::SSL_CTX_set_verify(ctx_.get(), on ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
  return *this;
}

struct TlsStream::Impl {
  Stream stream;
  std::shared_ptr<SSL_CTX> ctx;  // outlives ssl
  SSL* ssl = nullptr;
  BIO* in = nullptr;   // network -> OpenSSL (owned by ssl)
  BIO* out = nullptr;  // OpenSSL -> network (owned by ssl)
  Address peer;
  bool closed = false;  // the peer's close_notify or EOF arrived
  bool shut = false;    // our close_notify went
  bool handshaken = false;
  // Record framing of the incoming bytes: header bytes seen of the current record (0-5), and
  // body bytes still due.
  std::size_t header_seen = 0;
  unsigned char header[5] = {};
  std::size_t body_left = 0;

  Impl(Stream s, std::shared_ptr<SSL_CTX> c) : stream(std::move(s)), ctx(std::move(c)) {}
  ~Impl() {
    if (ssl != nullptr) ::SSL_free(ssl);
  }

  bool mid_record() const noexcept { return header_seen != 0 || body_left != 0; }

  void follow(std::string_view bytes) noexcept {
    for (std::size_t i = 0; i < bytes.size();) {
      if (body_left > 0) {
        const std::size_t k = std::min(body_left, bytes.size() - i);
        body_left -= k;
        i += k;
        continue;
      }
      header[header_seen++] = static_cast<unsigned char>(bytes[i++]);
      if (header_seen == 5) {
        body_left = (std::size_t{header[3]} << 8) | header[4];
        header_seen = 0;
      }
    }
  }

  // left() is what remains of a call's deadline, or none (the stream's own timeout applies).
  static std::optional<Duration> left(const std::optional<std::int64_t>& deadline) {
    if (!deadline) return std::nullopt;
    return Duration(std::max<std::int64_t>(0, *deadline - current_hub().now_ns()));
  }

  // flush() sends whatever OpenSSL wrote.
  void flush(const std::optional<std::int64_t>& deadline) {
    char buf[16384];
    while (::BIO_ctrl_pending(out) > 0) {
      const int n = ::BIO_read(out, buf, sizeof buf);
      if (n <= 0) break;
      stream.sendall(std::string_view(buf, static_cast<std::size_t>(n)), left(deadline));
    }
  }

  // fill() gives OpenSSL what the peer sent next; false at EOF.
  bool fill(const std::optional<std::int64_t>& deadline) {
    char buf[16384];
    const std::size_t got = stream.recv_into(buf, sizeof buf, left(deadline));
    if (got == 0) {
      BIO_set_mem_eof_return(in, 0);
      return false;
    }
    follow(std::string_view(buf, got));
    ::BIO_write(in, buf, static_cast<int>(got));
    return true;
  }

  // failure() is the error of a failed OpenSSL call, as text.
  std::string failure(int err) {
    std::string reason = openssl_reason();
    if (err == SSL_ERROR_SYSCALL && reason == "no reason given") reason = "the connection failed";
    const long verify = ::SSL_get_verify_result(ssl);
    if (verify != X509_V_OK) {
      reason += std::string(" (") + ::X509_verify_cert_error_string(verify) + ")";
    }
    return reason;
  }

  // drive() runs op until it succeeds, moving bytes as OpenSSL asks; returns op's result, or 0
  // when the peer closed (close_notify, or an EOF between records after the handshake).
  // what() names the call for an error (made only then).
  template <class Op, class What>
  int drive(Op op, What what, const std::optional<std::int64_t>& deadline) {
    for (;;) {
      ::ERR_clear_error();
      const int r = op();
      const int err = r > 0 ? SSL_ERROR_NONE : ::SSL_get_error(ssl, r);
      flush(deadline);
      if (err == SSL_ERROR_NONE) return r;
      if (err == SSL_ERROR_ZERO_RETURN) {
        closed = true;
        return 0;
      }
      if (err == SSL_ERROR_WANT_READ) {
        if (fill(deadline)) continue;
        // EOF from the peer.
        closed = true;
        if (!handshaken) {
          throw TlsError(what() + ": the peer closed the connection during the handshake");
        }
        if (mid_record()) {
          throw TlsError(what() + ": the peer closed the connection in the middle of a record");
        }
        ::ERR_clear_error();
        return 0;
      }
      if (err == SSL_ERROR_WANT_WRITE) continue;  // flushed above
      throw TlsError(what() + ": " + failure(err));
    }
  }

  std::optional<std::int64_t> deadline_of(std::optional<Duration> timeout) const {
    if (!timeout) return std::nullopt;
    if (*timeout < Duration::zero()) throw UsageError("tendril::TlsStream: negative timeout");
    return current_hub().now_ns() + timeout->count();
  }
};

TlsStream::TlsStream(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsStream::TlsStream(TlsStream&&) noexcept = default;
TlsStream& TlsStream::operator=(TlsStream&&) noexcept = default;
TlsStream::~TlsStream() = default;

TlsStream wrap_tls(Stream stream, const TlsContext& context, const std::string& host,
                   std::optional<Duration> timeout) {
  if (!stream.is_open()) throw UsageError("tendril::wrap_tls: the stream is closed");
  auto impl = std::make_unique<TlsStream::Impl>(std::move(stream), context.ctx_);
  TlsStream::Impl& s = *impl;
  s.peer = s.stream.peer();
  s.ssl = ::SSL_new(context.native());
  s.in = ::BIO_new(BIO_s_mem());
  s.out = ::BIO_new(BIO_s_mem());
  if (s.ssl == nullptr || s.in == nullptr || s.out == nullptr) fail("tendril::wrap_tls: SSL_new");
  BIO_set_mem_eof_return(s.in, -1);  // empty means "wait for more", until EOF
  ::SSL_set_bio(s.ssl, s.in, s.out);
  if (context.is_server()) {
    ::SSL_set_accept_state(s.ssl);
  } else {
    const std::string name = host.empty() ? s.peer.host : host;
    ::SSL_set_connect_state(s.ssl);
    if (!numeric_host(name)) {
      // SSL_set_tlsext_host_name, without its macro's C cast.
      ::SSL_ctrl(s.ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(name.c_str()));
    }
    // The certificate must name it: an IP address for a numeric host, else a DNS name.
    if (numeric_host(name)) {
      ::X509_VERIFY_PARAM_set1_ip_asc(::SSL_get0_param(s.ssl), name.c_str());
    } else {
      ::SSL_set1_host(s.ssl, name.c_str());
    }
  }
  const auto what = [&] {
    return "tendril::wrap_tls: handshake with " + s.peer.to_string() + " failed";
  };
  const std::optional<std::int64_t> deadline = s.deadline_of(timeout);
  if (s.drive([&] { return ::SSL_do_handshake(s.ssl); }, what, deadline) == 0) {
    throw TlsError(what() + ": the peer closed the connection during the handshake");
  }
  s.handshaken = true;
  return TlsStream(std::move(impl));
}

std::string TlsStream::recv(std::size_t n, std::optional<Duration> timeout) {
  if (!impl_) throw UsageError("tendril::TlsStream::recv: the stream is closed");
  Impl& s = *impl_;
  if (s.closed || n == 0) return "";
  char buf[16384];  // one record's worth: no zero-filled string of n bytes per call
  const std::optional<std::int64_t> deadline = s.deadline_of(timeout);
  const int r =
      s.drive([&] { return ::SSL_read(s.ssl, buf, static_cast<int>(std::min(n, sizeof buf))); },
              [&] { return "tendril::TlsStream::recv from " + s.peer.to_string(); }, deadline);
  return std::string(buf, r > 0 ? static_cast<std::size_t>(r) : 0);
}

void TlsStream::sendall(std::string_view data, std::optional<Duration> timeout) {
  if (!impl_) throw UsageError("tendril::TlsStream::sendall: the stream is closed");
  Impl& s = *impl_;
  const std::optional<std::int64_t> deadline = s.deadline_of(timeout);
  const auto what = [&] { return "tendril::TlsStream::sendall to " + s.peer.to_string(); };
  if (s.shut) throw TlsError(what() + ": after shutdown()");
  while (!data.empty()) {
    const int chunk = static_cast<int>(std::min<std::size_t>(data.size(), 1 << 20));
    const int r = s.drive([&] { return ::SSL_write(s.ssl, data.data(), chunk); }, what, deadline);
    if (r <= 0) throw TlsError(what() + ": the peer closed the connection");
    data.remove_prefix(static_cast<std::size_t>(r));
  }
}

void TlsStream::shutdown() {
  if (!impl_ || impl_->shut) return;
  Impl& s = *impl_;
  s.shut = true;
  ::SSL_shutdown(s.ssl);  // queues close_notify; the peer's is not awaited (as Python's unwrap)
  s.flush(std::nullopt);
  s.stream.shutdown(net::Shutdown::write);
}

void TlsStream::close() noexcept { impl_.reset(); }

bool TlsStream::is_open() const noexcept { return impl_ != nullptr; }

Address TlsStream::peer() const {
  if (!impl_) throw UsageError("tendril::TlsStream::peer: the stream is closed");
  return impl_->peer;
}

std::string TlsStream::version() const { return impl_ ? ::SSL_get_version(impl_->ssl) : ""; }

std::string TlsStream::cipher() const { return impl_ ? ::SSL_get_cipher_name(impl_->ssl) : ""; }

Stream& TlsStream::stream() {
  if (!impl_) throw UsageError("tendril::TlsStream::stream: the stream is closed");
  return impl_->stream;
}

}  // namespace tendril
