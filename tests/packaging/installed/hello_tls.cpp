// SPDX-License-Identifier: Apache-2.0
// hello_tls.cpp: a TLS echo over the simulated network, linked against the installed tendril::tls
// (and tendril::sim): a self-signed certificate made here, a handshake, one round trip.
#include <cstdio>
#include <string>

#include "tendril/sim.hpp"
#include "tendril/tls.hpp"

int main() {
  tendril::SimHub hub;
  std::string back;
  tendril::run(hub, [&] {
    const tendril::TlsIdentity id = tendril::self_signed_identity("localhost");
    tendril::Listener listener = tendril::listen({"127.0.0.1", 443});
    auto server = tendril::spawn([&] {
      tendril::TlsStream tls =
          tendril::wrap_tls(listener.accept(), tendril::TlsContext::server(id));
      tls.sendall(tls.recv(64));
      tls.shutdown();
    });
    tendril::TlsContext client = tendril::TlsContext::client();
    client.trust(id.certificate_pem);
    tendril::TlsStream tls =
        tendril::wrap_tls(tendril::connect(listener.address()), client, "localhost");
    tls.sendall("hello over " + tls.version());
    back = tls.recv(64);
    server->join();
  });
  std::printf("hello from the installed tendril::tls: %s\n", back.c_str());
  return back == "hello over TLSv1.3" ? 0 : 1;
}
