// SPDX-License-Identifier: Apache-2.0
// green_crawler: gevent's crawler tutorial with libcurl's blocking easy API. N greenlets on a
// LibevHub each fetch one page with curl_easy_perform from a local HTTP server whose handler
// takes 0.1 s. Built as green_crawler (linked with tendril::green: curl's poll() and sleeps wait
// on the hub, so the N fetches overlap and take about one request's time) and as
// green_crawler_plain (the same source without it: each curl_easy_perform blocks the thread, N
// requests take N times as long). The server runs on its own thread and LibevHub.
// With --sim, everything runs on one SimHub instead: the server listens on the simulated network
// (tendril::listen) and curl's sockets, poll() and clocks are simulated too, so the crawl takes
// exactly 0.1 s of virtual time however many pages, and the same on every run.
//   green_crawler [--sim] [pages=10]
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
#include "tendril/sim.hpp"

using namespace std::chrono_literals;

namespace {

// Counters count the requests in flight at the server, and the most at once.
struct Counters {
  int in_flight = 0;  // on the server's hub only
  std::atomic<int> most{0};
};

// serve_page() answers one request after 0.1 s (of the hub's time).
void serve_page(tendril::Stream& conn, Counters& counters) {
  std::string request;
  while (request.find("\r\n\r\n") == std::string::npos) {
    const std::string part = conn.recv(4096);
    if (part.empty()) return;
    request += part;
  }
  const int now = ++counters.in_flight;
  counters.most = std::max(counters.most.load(), now);
  tendril::sleep(100ms);  // the page takes a while
  --counters.in_flight;
  const std::string path = request.substr(4, request.find(' ', 4) - 4);
  const std::string body = "page " + path + "\n";
  conn.sendall("HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
               "\r\nConnection: close\r\n\r\n" + body);
}

// serve() accepts `pages` connections on listener and serves each in its own greenlet.
void serve(tendril::Listener& listener, int pages, Counters& counters) {
  std::vector<tendril::Ref<tendril::Greenlet>> handlers;
  for (int i = 0; i < pages; ++i) {
    auto conn = std::make_shared<tendril::Stream>(listener.accept());
    handlers.push_back(tendril::spawn([conn, &counters] { serve_page(*conn, counters); }));
  }
  tendril::joinall(handlers);
}

// Server answers `pages` requests on 127.0.0.1 (a free port), on its own thread and LibevHub.
class Server {
 public:
  explicit Server(int pages) : pages_(pages) {
    thread_ = std::thread([this] { run(); });
    while (port_.load() == 0) std::this_thread::sleep_for(1ms);
  }
  ~Server() { thread_.join(); }
  std::uint16_t port() const { return port_.load(); }
  int most_in_flight() const { return counters_.most.load(); }

 private:
  void run() {
    tendril::LibevHub hub;
    tendril::run(hub, [&] {
      tendril::Listener listener = tendril::listen(tendril::Address{"127.0.0.1", 0});
      port_ = listener.address().port;
      serve(listener, pages_, counters_);
    });
  }

  int pages_;
  std::atomic<std::uint16_t> port_{0};
  Counters counters_;
  std::thread thread_;
};

size_t append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// fetch() gets url with plain blocking libcurl: nothing here knows about greenlets.
CURLcode fetch(const std::string& url, std::string* body) {
  CURL* curl = curl_easy_init();
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
  const CURLcode code = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  return code;
}

// report() checks the pages, prints what was fetched and returns how many came back right.
int report(const std::vector<CURLcode>& codes, const std::vector<std::string>& bodies,
           int most_in_flight) {
  const int pages = static_cast<int>(codes.size());
  int right = 0;
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
      right, pages, pages, most_in_flight);
  return right;
}

// crawl_simulated() runs the server and the fetchers on one SimHub, over the simulated network.
int crawl_simulated(int pages) {
  std::vector<std::string> bodies(pages);
  std::vector<CURLcode> codes(pages, CURLE_OK);
  Counters counters;
  std::int64_t took_ns = 0;
  tendril::SimHub hub;
  tendril::run(hub, [&] {
    tendril::Listener listener = tendril::listen(tendril::Address{"127.0.0.1", 8080});
    auto server = tendril::spawn("server", [&] { serve(listener, pages, counters); });
    std::vector<tendril::Ref<tendril::Greenlet>> fetchers;
    for (int i = 0; i < pages; ++i) {
      fetchers.push_back(tendril::spawn("fetcher", [&, i] {
        codes[i] = fetch("http://127.0.0.1:8080/" + std::to_string(i), &bodies[i]);
      }));
    }
    tendril::joinall(fetchers);
    server->join();
    took_ns = hub.now_ns();
  });
  const int right = report(codes, bodies, counters.most.load());
  std::printf("took %.6f s of virtual time on SimHub; one request takes 0.100000 s\n",
              static_cast<double>(took_ns) / 1e9);
  return right == pages ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ::alarm(120);  // a hang ends the program (and a test) instead of stalling it
  int pages = 10;
  const bool simulated = argc > 1 && std::string(argv[1]) == "--sim";
  if (simulated) {
    --argc;
    ++argv;
  }
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
#ifdef GREEN_CRAWLER_PLAIN
  if (simulated) {
    std::fprintf(stderr,
                 "green_crawler_plain: --sim needs tendril::green (run green_crawler --sim): "
                 "without it curl's sockets are the kernel's, not the simulated network's\n");
    return 2;
  }
#endif
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    std::fprintf(stderr, "green_crawler: curl_global_init failed\n");
    return 1;
  }
  if (simulated) {
    const int rc = crawl_simulated(pages);
    curl_global_cleanup();
    return rc;
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
          codes[i] =
              fetch("http://127.0.0.1:" + std::to_string(server.port()) + "/" + std::to_string(i),
                    &bodies[i]);
        }));
      }
      tendril::joinall(fetchers);
    });
    seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    right = report(codes, bodies, server.most_in_flight());
  }
  std::printf("took %.2f s; one request takes 0.10 s\n", seconds);
  curl_global_cleanup();
  return right == pages ? 0 : 1;
}
