// SPDX-License-Identifier: Apache-2.0
// tendril::tls on both hubs: an echo over TLS on LibevHub (real sockets) and SimHub (the
// simulated network, virtual time), and every bad input the issue names with its exact error: a
// certificate that does not verify, a peer that does not speak TLS, a close in the middle of a
// record or of the handshake, a reset during the handshake. The server keeps serving after each.
// Certificates are made by the test (self_signed_identity), never read from files.
#include "tendril/tls.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

#include "tendril/explore.hpp"
#include "tendril/net.hpp"
#include "tendril/realio.hpp"
#include "tendril/sim.hpp"

using namespace std::chrono_literals;

namespace {

const tendril::TlsIdentity& identity() {
  static const tendril::TlsIdentity id = tendril::self_signed_identity("localhost");
  return id;
}

const tendril::TlsIdentity& other_identity() {
  static const tendril::TlsIdentity id = tendril::self_signed_identity("localhost");
  return id;
}

// echo_once() is a TLS echo: it runs the handshake on conn, echoes what comes until the peer
// closes, then sends close_notify; what a failed handshake throws goes to *error.
void echo_once(tendril::Stream conn, const tendril::TlsContext& server, std::string* error) {
  try {
    tendril::TlsStream tls = tendril::wrap_tls(std::move(conn), server);
    for (std::string part; !(part = tls.recv(4096)).empty();) tls.sendall(part);
    tls.shutdown();
  } catch (const tendril::TlsError& e) {
    *error = e.what();
  }
}

std::string client_round_trip(const tendril::Address& to, const tendril::TlsContext& client) {
  tendril::TlsStream tls = tendril::wrap_tls(tendril::connect(to), client, "localhost");
  tls.sendall("hello over " + tls.version());
  std::string back;
  for (std::string part; !(part = tls.recv(4096)).empty();) {
    back += part;
    if (back.size() >= 11 + tls.version().size()) tls.shutdown();
  }
  return back;
}

}  // namespace

// An echo over TLS 1.3 between two greenlets of a LibevHub, over a real socket.
TEST(Tls, EchoOnLibevHub) {
  tendril::LibevHub hub;
  std::string back;
  std::string server_error;
  tendril::run(hub, [&] {
    tendril::Listener listener = tendril::listen({"127.0.0.1", 0});
    const tendril::TlsContext server = tendril::TlsContext::server(identity());
    auto s = tendril::spawn([&] { echo_once(listener.accept(), server, &server_error); });
    tendril::TlsContext client = tendril::TlsContext::client();
    client.trust(identity().certificate_pem);
    back = client_round_trip(listener.address(), client);
    s->join();
  });
  EXPECT_EQ(back, "hello over TLSv1.3");
  EXPECT_EQ(server_error, "");
}

// The same on SimHub, in virtual time: with 1 ms per delivery, the TLS 1.3 handshake, the echo
// and the closes take exactly 6 deliveries one after the other (ClientHello; ServerHello to
// Finished; the client's Finished with its data; the echo; each side's close_notify), every run.
TEST(Tls, EchoOnSimHubInVirtualTime) {
  std::vector<std::string> runs;
  for (int round = 0; round < 2; ++round) {
    tendril::SimOptions options;
    options.net.min_latency_us = 1000;
    options.net.max_latency_us = 1000;
    tendril::SimHub hub(options);
    tendril::run(hub, [&] {
      tendril::Listener listener = tendril::listen({"127.0.0.1", 443});
      const tendril::TlsContext server = tendril::TlsContext::server(identity());
      std::string server_error;
      auto s = tendril::spawn([&] { echo_once(listener.accept(), server, &server_error); });
      tendril::TlsContext client = tendril::TlsContext::client();
      client.trust(identity().certificate_pem);
      const std::string back = client_round_trip(listener.address(), client);
      s->join();
      runs.push_back(back + " at " + std::to_string(hub.now_ns()) + server_error);
    });
  }
  EXPECT_EQ(runs, std::vector<std::string>(2, "hello over TLSv1.3 at 6000000"));
}

namespace {

// bad_peer() runs a TLS server on a SimHub and one client that does `bad` (with the raw stream
// or a TLS context of its own), then a good client; returns the server's error for the bad one,
// then what the bad client saw, then the good client's echo.
std::vector<std::string> bad_peer(const std::function<std::string(const tendril::Address&)>& bad,
                                  const std::function<void(tendril::SimHub&)>& arm = nullptr) {
  std::vector<std::string> out;
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::Listener listener = tendril::listen({"127.0.0.1", 443});
    const tendril::TlsContext server = tendril::TlsContext::server(identity());
    std::vector<std::string> errors(2);
    auto s = tendril::spawn([&] {
      for (int i = 0; i < 2; ++i) {
        tendril::Stream conn = listener.accept();
        try {
          echo_once(std::move(conn), server, &errors[i]);
        } catch (const std::system_error& e) {
          errors[i] = std::string("system_error: ") + e.what();
        }
      }
    });
    if (arm) arm(hub);
    std::string saw;
    try {
      saw = bad(listener.address());
    } catch (const tendril::TlsError& e) {
      saw = std::string("TlsError: ") + e.what();
    } catch (const std::system_error& e) {
      saw = std::string("system_error: ") + e.what();
    }
    tendril::TlsContext client = tendril::TlsContext::client();
    client.trust(identity().certificate_pem);
    const std::string good = client_round_trip(listener.address(), client);
    s->join();
    out = {"server: " + errors[0], "bad client: " + saw, "then: " + good, errors[1]};
  });
  return out;
}

}  // namespace

// A client that trusts another certificate refuses the server's; the server sees the alert.
TEST(Tls, AWrongCertificateFailsTheHandshakeWithTheReason) {
  const auto out = bad_peer([](const tendril::Address& to) {
    tendril::TlsContext client = tendril::TlsContext::client();
    client.trust(other_identity().certificate_pem);
    tendril::wrap_tls(tendril::connect(to), client, "localhost");
    return std::string("handshake passed");
  });
  EXPECT_EQ(out, (std::vector<std::string>{
                     "server: tendril::wrap_tls: handshake with sim-client:40000 failed: tlsv1 "
                     "alert unknown ca",
                     "bad client: TlsError: tendril::wrap_tls: handshake with 127.0.0.1:443 "
                     "failed: certificate verify failed (self-signed certificate)",
                     "then: hello over TLSv1.3", ""}));
}

// A certificate for another name fails too (the client checks the name, not only the chain).
TEST(Tls, ACertificateForAnotherNameFails) {
  const auto out = bad_peer([](const tendril::Address& to) {
    tendril::TlsContext client = tendril::TlsContext::client();
    client.trust(identity().certificate_pem);
    tendril::wrap_tls(tendril::connect(to), client, "db.example");
    return std::string("handshake passed");
  });
  EXPECT_EQ(out[1],
            "bad client: TlsError: tendril::wrap_tls: handshake with 127.0.0.1:443 failed: "
            "certificate verify failed (hostname mismatch)");
  EXPECT_EQ(out[2], "then: hello over TLSv1.3");
}

// A peer that sends plain text instead of TLS records: the server names it and closes.
TEST(Tls, APeerThatDoesNotSpeakTlsGetsAClearError) {
  const auto out = bad_peer([](const tendril::Address& to) {
    tendril::Stream s = tendril::connect(to);
    s.sendall("GARBAGE GARBAGE GARBAGE\r\n\r\n");
    return "the server answered " + std::to_string(s.recv(100).size()) + " bytes";
  });
  EXPECT_EQ(out, (std::vector<std::string>{
                     "server: tendril::wrap_tls: handshake with sim-client:40000 failed: wrong "
                     "version number",
                     "bad client: the server answered 0 bytes", "then: hello over TLSv1.3", ""}));
}

// A peer that closes during the handshake, and one that closes in the middle of a record.
TEST(Tls, ClosesDuringTheHandshakeOrARecordAreErrors) {
  const auto during = bad_peer([](const tendril::Address& to) {
    tendril::Stream s = tendril::connect(to);
    s.close();
    return std::string("closed");
  });
  EXPECT_EQ(during[0],
            "server: tendril::wrap_tls: handshake with sim-client:40000 failed: the peer closed "
            "the connection during the handshake");
  EXPECT_EQ(during[2], "then: hello over TLSv1.3");

  // The client half-sends a record: its header says 100 bytes, 10 come, then the connection
  // closes.
  const auto mid = bad_peer([](const tendril::Address& to) {
    tendril::TlsContext client = tendril::TlsContext::client();
    client.trust(identity().certificate_pem);
    tendril::TlsStream tls = tendril::wrap_tls(tendril::connect(to), client, "localhost");
    tls.stream().sendall(std::string("\x17\x03\x03\x00\x64", 5) + std::string(10, 'x'));
    tls.stream().shutdown(tendril::net::Shutdown::write);
    return "the server answered '" + tls.recv(100) + "'";
  });
  EXPECT_EQ(mid[0],
            "server: tendril::TlsStream::recv from sim-client:40000: the peer closed the "
            "connection in the middle of a record");
  EXPECT_EQ(mid[2], "then: hello over TLSv1.3");
}

// A connection reset during the handshake is the stream's ECONNRESET, never a hang.
TEST(Tls, AResetDuringTheHandshakeIsTheStreamsError) {
  const auto out = bad_peer(
      [](const tendril::Address& to) {
        tendril::TlsContext client = tendril::TlsContext::client();
        client.trust(identity().certificate_pem);
        tendril::wrap_tls(tendril::connect(to), client, "localhost");
        return std::string("handshake passed");
      },
      [](tendril::SimHub& hub) {
        hub.sim_net().reset_after({"127.0.0.1", 443}, {}, 200);  // after the ClientHello
      });
  EXPECT_EQ(out[1],
            "bad client: system_error: tendril: recv from 127.0.0.1:443 (simulated): Connection "
            "reset by peer");
  EXPECT_EQ(out[2], "then: hello over TLSv1.3");
}

// Bad arguments: PEM text that holds nothing, a key that does not match.
TEST(Tls, BadCertificatesAndKeysAreRefused) {
  std::vector<std::string> errors;
  try {
    tendril::TlsContext::client().trust("not a certificate");
  } catch (const tendril::TlsError& e) {
    errors.push_back(e.what());
  }
  try {
    tendril::TlsContext::server({identity().certificate_pem, other_identity().private_key_pem});
  } catch (const tendril::TlsError& e) {
    errors.push_back(e.what());
  }
  try {
    tendril::TlsContext::server({"junk", identity().private_key_pem});
  } catch (const tendril::TlsError& e) {
    errors.push_back(e.what());
  }
  EXPECT_EQ(errors, (std::vector<std::string>{
                        "tendril::TlsContext::trust: the text holds no PEM certificate",
                        "tendril::TlsContext::server: the key does not match the certificate: key "
                        "values mismatch",
                        "tendril::TlsContext::server: the certificate does not parse: no start "
                        "line"}));
}

// Under exploration with drawn resets (a quarter of the connections reset somewhere in their
// first 2,000 bytes, handshake included) and drawn latencies, every run ends with the echo or a
// clear error on each side: never a hang, never wrong bytes.
TEST(Tls, ExploredResetsEndInTheEchoOrAClearError) {
  tendril::ExploreOptions options;
  options.test = "Tls.ExploredResets";
  options.policy = "random";
  options.schedules = 100;
  options.jobs = 1;  // the outcomes are counted across schedules
  options.progress = "off";
  options.artifacts = ::testing::TempDir() + "tls-explore";
  options.sim.net.max_latency_us = 500;
  options.sim.net.reset_one_in = 4;
  options.sim.net.reset_within_bytes = 2000;
  int echoed = 0;
  int failed = 0;
  const tendril::ExploreResult result = tendril::explore(options, [&] {
    tendril::Listener listener = tendril::listen({"127.0.0.1", 443});
    const tendril::TlsContext server = tendril::TlsContext::server(identity());
    auto s = tendril::spawn([&] {
      std::string error;
      try {
        echo_once(listener.accept(), server, &error);
      } catch (const std::system_error& e) {
        error = e.what();
      }
      if (!error.empty() && error.rfind("tendril", 0) != 0) throw std::runtime_error(error);
    });
    tendril::TlsContext client = tendril::TlsContext::client();
    client.trust(identity().certificate_pem);
    std::string outcome;
    try {
      outcome = client_round_trip(listener.address(), client);
    } catch (const tendril::TlsError& e) {
      outcome = e.what();
    } catch (const std::system_error& e) {
      outcome = e.what();
    }
    s->join();
    if (outcome == "hello over TLSv1.3") {
      ++echoed;
    } else if (outcome.rfind("tendril", 0) == 0 &&
               outcome.find("Connection reset by peer") != std::string::npos) {
      ++failed;
    } else {
      throw std::runtime_error("neither the echo nor a reset: '" + outcome + "'");
    }
  });
  EXPECT_TRUE(result.ok()) << result.summary;
  EXPECT_EQ(result.schedules_run, 100u);
  EXPECT_GT(echoed, 30);
  EXPECT_GT(failed, 5);
  EXPECT_EQ(echoed + failed, 100);
}
