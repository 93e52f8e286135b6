// sse_client: one browser's share of pool-dash's live stream, for the
// benchmark: an HTTP GET over a plain socket, its chunked body decoded and
// split into Server-Sent Events, each stamped when its bytes arrived.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace poolbus::bench {

struct sse_event {
  std::string name;  // "event:" (empty when none)
  std::string data;  // "data:" lines joined by \n
  std::chrono::steady_clock::time_point at;
};

class sse_client {
 public:
  // nullptr when nothing listens on 127.0.0.1:port.
  static std::unique_ptr<sse_client> connect(int port, const std::string& path = "/api/stream");
  ~sse_client();
  sse_client(const sse_client&) = delete;
  sse_client& operator=(const sse_client&) = delete;

  // The next event, waiting up to timeout_ms; nullopt on timeout or once closed.
  std::optional<sse_event> next(int timeout_ms);
  bool closed() const { return closed_; }
  int fd() const { return fd_; }  // to poll beside other sockets

 private:
  explicit sse_client(int fd) : fd_(fd) {}
  bool receive(int timeout_ms);  // reads what arrived; false on timeout/close
  void decode();                 // raw_ -> body_ (headers, then chunks)
  std::optional<sse_event> take_event();

  int fd_;
  bool closed_ = false;
  bool headers_done_ = false;
  size_t chunk_left_ = 0;
  bool chunk_crlf_ = false;  // the CRLF after a chunk's data is due
  std::string raw_, body_;
  std::chrono::steady_clock::time_point last_read_;
};

// The body of one GET (a plain, non-chunked reply), or nullopt.
std::optional<std::string> http_get(int port, const std::string& path, int timeout_ms);

}  // namespace poolbus::bench
