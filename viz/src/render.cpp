// SPDX-License-Identifier: Apache-2.0
// render.cpp: Graphviz's C library (cgraph + gvc) behind render_dot(). Graphviz is not
// thread-safe: every call is serialised by one mutex.
#include <graphviz/cgraph.h>
#include <graphviz/gvc.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "tendril/trace/trace_file.hpp"
#include "tendril/viz.hpp"

namespace tendril::viz {
namespace {

std::mutex graphviz_mutex;
// One Graphviz context for the process, made on first use and never freed: Graphviz 2.42's
// pango plugin keeps pointers into a context's font data, so freeing a context and making a
// new one makes the next layout read freed memory (found by ASan).
GVC_t* graphviz_context() {
  static GVC_t* const gvc = gvContext();
  return gvc;
}
std::string* graphviz_errors = nullptr;  // collects Graphviz's messages during one call

int collect_error(char* message) {
  if (graphviz_errors != nullptr) *graphviz_errors += message;
  return 0;
}

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

void render_dot(const std::string& dot, const std::string& format, const std::string& path) {
  const std::lock_guard<std::mutex> lock(graphviz_mutex);
  std::string errors;
  graphviz_errors = &errors;
  agseterrf(&collect_error);
  agseterr(AGERR);
  struct Cleanup {
    GVC_t* gvc = nullptr;
    Agraph_t* graph = nullptr;
    bool laid_out = false;
    ~Cleanup() {
      if (laid_out) gvFreeLayout(gvc, graph);
      if (graph != nullptr) agclose(graph);
      agseterrf(nullptr);
      graphviz_errors = nullptr;
    }
  } c;
  c.gvc = graphviz_context();
  if (c.gvc == nullptr) throw VizError("tendril-viz: Graphviz could not start (gvContext failed)");
  c.graph = agmemread(dot.c_str());
  if (c.graph == nullptr) {
    throw VizError("tendril-viz: Graphviz rejected the DOT text: " + trimmed(errors));
  }
  // Flow graphs carry their own positions (pinned): the "nop" layout keeps them.
  const bool pinned = dot.find("!\"") != std::string::npos;
  if (gvLayout(c.gvc, c.graph, pinned ? "nop" : "dot") != 0) {
    std::string hint;
    if (errors.find("not recognized") != std::string::npos) {
      hint =
          " (Graphviz's plugins are not registered on this machine: install Debian's 'graphviz' "
          "package, which runs 'dot -c', or run 'dot -c' as root)";
    }
    throw VizError("tendril-viz: Graphviz could not lay out the graph: " + trimmed(errors) + hint);
  }
  c.laid_out = true;
  // Render to memory and write the file ourselves: Graphviz 2.42's own file writer reports an
  // unwritable path only on stderr and returns success.
  char* data = nullptr;
  unsigned int length = 0;
  if (gvRenderData(c.gvc, c.graph, format.c_str(), &data, &length) != 0 || data == nullptr) {
    if (data != nullptr) gvFreeRenderData(data);
    throw VizError("tendril-viz: Graphviz could not render the graph as " + format + ": " +
                   trimmed(errors));
  }
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    const std::string why = std::strerror(errno);
    gvFreeRenderData(data);
    throw VizError("tendril-viz: cannot write " + path + ": " + why);
  }
  const bool ok = std::fwrite(data, 1, length, f) == length;
  gvFreeRenderData(data);
  if (std::fclose(f) != 0 || !ok) throw VizError("tendril-viz: writing " + path + " failed");
}

namespace {

// output_extension() is path's extension, lower case, if tendril can write it.
std::string output_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (ext != ".dot" && ext != ".gv" && ext != ".svg" && ext != ".png" && ext != ".pdf") {
    throw VizError("tendril-viz: cannot tell the output format of '" + path +
                   "' from its extension; use .dot, .svg, .png or .pdf");
  }
  return ext;
}

void write_graph(const std::string& dot, const std::string& ext, const std::string& path);

}  // namespace

void render_diff(const trace::Trace& passing, const trace::Trace& failing, const std::string& path,
                 const DiffOptions& options) {
  const std::string ext = output_extension(path);
  write_graph(diff_dot(passing, failing, options), ext, path);
}

void render_flow(const trace::Trace& trace, const std::string& path, const FlowOptions& options) {
  const std::string ext = output_extension(path);
  write_graph(flow_dot(trace, options), ext, path);
}

namespace {

void write_graph(const std::string& dot, const std::string& ext, const std::string& path) {
  if (ext == ".dot" || ext == ".gv") {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
      throw VizError("tendril-viz: cannot write " + path + ": " + std::strerror(errno));
    }
    const bool ok = std::fwrite(dot.data(), 1, dot.size(), f) == dot.size();
    if (std::fclose(f) != 0 || !ok) throw VizError("tendril-viz: writing " + path + " failed");
    return;
  }
  render_dot(dot, ext.substr(1), path);
}

}  // namespace

void install_flow_renderer() noexcept {
  trace::set_flow_renderer(
      [](const trace::Trace& trace, const std::string& path) { render_flow(trace, path); });
}

}  // namespace tendril::viz
