// SPDX-License-Identifier: Apache-2.0
// libcurl's blocking easy API (curl_easy_perform), unmodified, on SimHub through tendril::green:
// its sockets, poll() and clocks are simulated, so its runs are exact, an exploration varies the
// interleavings of several fetches, and a failing schedule replays from its file.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "tendril/explore.hpp"
#include "tendril/net.hpp"
#include "tendril/sim.hpp"

using namespace std::chrono_literals;

namespace {

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string fetch(const std::string& url, CURLcode* code) {
  std::string body;
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  *code = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  return body;
}

// crawl() fetches /0, /1 and /2 from three greenlets against a tendril server on the simulated
// network, and returns the paths in the order the server saw them, and the bodies.
std::string crawl() {
  std::string seen;
  tendril::Listener listener = tendril::listen({"127.0.0.1", 8080});
  auto server = tendril::spawn("server", [&] {
    std::vector<tendril::Ref<tendril::Greenlet>> handlers;
    for (int i = 0; i < 3; ++i) {
      auto conn = std::make_shared<tendril::Stream>(listener.accept());
      handlers.push_back(tendril::spawn("handler", [conn, &seen] {
        std::string request;
        while (request.find("\r\n\r\n") == std::string::npos) request += conn->recv(4096);
        const std::string path = request.substr(4, request.find(' ', 4) - 4);
        seen += path;
        tendril::sleep(10ms);
        const std::string body = "page " + path;
        conn->sendall("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\nConnection: close\r\n\r\n" + body);
      }));
    }
    tendril::joinall(handlers);
  });
  std::vector<std::string> bodies(3);
  std::vector<CURLcode> codes(3, CURLE_OK);
  std::vector<tendril::Ref<tendril::Greenlet>> fetchers;
  for (int i = 0; i < 3; ++i) {
    fetchers.push_back(tendril::spawn("fetcher", [&, i] {
      bodies[i] = fetch("http://127.0.0.1:8080/" + std::to_string(i), &codes[i]);
    }));
  }
  tendril::joinall(fetchers);
  server->join();
  std::string out = seen;
  for (int i = 0; i < 3; ++i) {
    out += " | " + (codes[i] == CURLE_OK ? bodies[i] : std::string(curl_easy_strerror(codes[i])));
  }
  return out;
}

}  // namespace

// Under the Fifo policy the fetches reach the server in the order they started, every time, and
// the whole crawl takes the handler's 10 ms of virtual time.
TEST(GreenSimCurl, CurlEasyPerformRunsExactlyOnSimHub) {
  ::alarm(60);
  std::vector<std::string> runs;
  for (int round = 0; round < 2; ++round) {
    tendril::SimHub hub;
    tendril::run(hub, [&] {
      const std::string out = crawl();
      runs.push_back(out + " @ " + std::to_string(hub.now_ns()));
    });
  }
  ::alarm(0);
  EXPECT_EQ(runs, (std::vector<std::string>(2, "/0/1/2 | page /0 | page /1 | page /2 @ 10000000")));
}

// With latencies drawn per delivery, exploration finds a schedule where the server sees the
// fetches out of order, and that schedule replays to the same order.
TEST(GreenSimCurl, ExplorationFindsAnOrderAndItsScheduleReplays) {
  ::alarm(120);
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("tendril-green-curl-" + std::to_string(::getpid()));
  tendril::ExploreOptions options;
  options.test = "GreenSimCurl.Order";
  options.policy = "random";
  options.schedules = 200;
  options.jobs = 1;
  options.artifacts = dir.string();
  options.progress = "off";
  options.sim.net.max_latency_us = 1000;
  auto body = [] {
    const std::string out = crawl();
    if (out.substr(0, 6) != "/0/1/2") throw std::runtime_error("served out of order: " + out);
  };
  const tendril::ExploreResult found = tendril::explore(options, body);
  ASSERT_EQ(found.failures, 1u) << found.summary;
  EXPECT_NE(found.failure.find("std::runtime_error: served out of order: /"), std::string::npos)
      << found.failure;
  EXPECT_NE(found.failure.find(" | page /0 | page /1 | page /2"), std::string::npos)
      << found.failure;
  tendril::ExploreOptions again = options;
  again.replay = found.schedule_file;
  const tendril::ExploreResult replayed = tendril::explore(again, body);
  ASSERT_EQ(replayed.failures, 1u) << replayed.summary;
  EXPECT_EQ(replayed.failure, found.failure);
  std::filesystem::remove_all(dir);
  ::alarm(0);
}
