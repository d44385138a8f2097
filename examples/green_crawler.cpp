// SPDX-License-Identifier: Apache-2.0
// green_crawler: gevent's crawler tutorial with libcurl's blocking easy API. N greenlets on a
// LibevHub each fetch one page with curl_easy_perform from a local HTTP server whose handler
// takes 0.1 s. Built as green_crawler (linked with tendril::green: curl's poll() and sleeps wait
// on the hub, so the N fetches overlap and take about one request's time) and as
// green_crawler_plain (the same source without it: each curl_easy_perform blocks the thread, N
// requests take N times as long). The server runs on its own thread and LibevHub.
//   green_crawler [pages=10]
#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tendril/net.hpp"
#include "tendril/realio.hpp"

using namespace std::chrono_literals;

namespace {

// Server answers `pages` requests, each after 0.1 s, on 127.0.0.1 (a free port), and counts how
// many were in flight at once.
class Server {
 public:
  explicit Server(int pages) : pages_(pages) {
    thread_ = std::thread([this] { run(); });
    while (port_.load() == 0) std::this_thread::sleep_for(1ms);
  }
  ~Server() { thread_.join(); }
  std::uint16_t port() const { return port_.load(); }
  int most_in_flight() const { return most_.load(); }

 private:
  void run() {
    tendril::LibevHub hub;
    tendril::run(hub, [&] {
      tendril::Listener listener = tendril::listen(tendril::Address{"127.0.0.1", 0});
      port_ = listener.address().port;
      std::vector<tendril::Ref<tendril::Greenlet>> handlers;
      for (int i = 0; i < pages_; ++i) {
        auto conn = std::make_shared<tendril::Stream>(listener.accept());
        handlers.push_back(tendril::spawn([this, conn] { handle(*conn); }));
      }
      tendril::joinall(handlers);
    });
  }
  void handle(tendril::Stream& conn) {
    std::string request;
    while (request.find("\r\n\r\n") == std::string::npos) {
      const std::string part = conn.recv(4096);
      if (part.empty()) return;
      request += part;
    }
    const int now = ++in_flight_;
    most_ = std::max(most_.load(), now);
    tendril::sleep(100ms);  // the page takes a while
    --in_flight_;
    const std::string path = request.substr(4, request.find(' ', 4) - 4);
    const std::string body = "page " + path + "\n";
    conn.sendall("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body);
  }

  int pages_;
  std::atomic<std::uint16_t> port_{0};
  int in_flight_ = 0;  // on the server's thread only
  std::atomic<int> most_{0};
  std::thread thread_;
};

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

}  // namespace

int main(int argc, char** argv) {
  ::alarm(120);  // a hang ends the program (and a test) instead of stalling it
  int pages = 10;
  if (argc > 1) {
    char* end = nullptr;
    const long v = std::strtol(argv[1], &end, 10);
    if (*argv[1] == '\0' || *end != '\0' || v <= 0 || v > 1000) {
      std::fprintf(stderr, "green_crawler: pages must be a number from 1 to 1000, got '%s'\n",
                   argv[1]);
      return 2;
    }
    pages = static_cast<int>(v);
  }
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fprintf(stderr, "green_crawler: curl_global_init failed\n");
    return 1;
  }
  int right = 0;
  double seconds = 0;
  {
    Server server(pages);
    std::vector<std::string> bodies(pages);
    std::vector<CURLcode> codes(pages, CURLE_OK);
    const auto start = std::chrono::steady_clock::now();
    tendril::LibevHub hub;
    tendril::run(hub, [&] {
      std::vector<tendril::Ref<tendril::Greenlet>> fetchers;
      for (int i = 0; i < pages; ++i) {
        fetchers.push_back(tendril::spawn([&, i] {
          // Plain blocking libcurl: nothing here knows about greenlets.
          CURL* curl = curl_easy_init();
          const std::string url =
              "http://127.0.0.1:" + std::to_string(server.port()) + "/" + std::to_string(i);
          curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
          curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
          curl_easy_setopt(curl, CURLOPT_WRITEDATA, &bodies[i]);
          curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
          codes[i] = curl_easy_perform(curl);
          curl_easy_cleanup(curl);
        }));
      }
      tendril::joinall(fetchers);
    });
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (int i = 0; i < pages; ++i) {
      if (codes[i] != CURLE_OK) {
        std::fprintf(stderr, "green_crawler: page %d: %s\n", i, curl_easy_strerror(codes[i]));
      } else if (bodies[i] == "page /" + std::to_string(i) + "\n") {
        ++right;
      }
    }
    std::printf(
        "fetched %d of %d pages with curl_easy_perform from %d greenlets; at most %d "
        "requests in flight at the server\n",
        right, pages, pages, server.most_in_flight());
  }
  std::printf("took %.2f s; one request takes 0.10 s\n", seconds);
  curl_global_cleanup();
  return right == pages ? 0 : 1;
}
