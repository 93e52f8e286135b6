#include "bench/sse_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

namespace poolbus::bench {
namespace {

int connect_loopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool send_all(int fd, const std::string& text) {
  size_t sent = 0;
  while (sent < text.size()) {
    ssize_t n = ::send(fd, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

std::string get_request(const std::string& path, bool keep) {
  return "GET " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nConnection: " + (keep ? "keep-alive" : "close") +
         "\r\n\r\n";
}

}  // namespace

std::unique_ptr<sse_client> sse_client::connect(int port, const std::string& path) {
  int fd = connect_loopback(port);
  if (fd < 0) return nullptr;
  if (!send_all(fd, get_request(path, true))) {
    ::close(fd);
    return nullptr;
  }
  return std::unique_ptr<sse_client>(new sse_client(fd));
}

sse_client::~sse_client() { ::close(fd_); }

bool sse_client::receive(int timeout_ms) {
  if (closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, timeout_ms) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) return closed_ = true, false;
  last_read_ = std::chrono::steady_clock::now();
  raw_.append(buf, static_cast<size_t>(n));
  decode();
  return true;
}

void sse_client::decode() {
  if (!headers_done_) {
    size_t end = raw_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    raw_.erase(0, end + 4);
    headers_done_ = true;
  }
  for (;;) {
    if (chunk_crlf_) {
      if (raw_.size() < 2) return;
      raw_.erase(0, 2);
      chunk_crlf_ = false;
    }
    if (chunk_left_ == 0) {
      size_t line = raw_.find("\r\n");
      if (line == std::string::npos) return;
      chunk_left_ = std::stoul(raw_.substr(0, line), nullptr, 16);
      raw_.erase(0, line + 2);
      if (chunk_left_ == 0) return void(closed_ = true);
    }
    size_t take = std::min(chunk_left_, raw_.size());
    if (take == 0) return;
    body_.append(raw_, 0, take);
    raw_.erase(0, take);
    chunk_left_ -= take;
    if (chunk_left_ == 0) chunk_crlf_ = true;
  }
}

std::optional<sse_event> sse_client::take_event() {
  for (;;) {
    size_t end = body_.find("\n\n");
    if (end == std::string::npos) return std::nullopt;
    std::string block = body_.substr(0, end);
    body_.erase(0, end + 2);
    sse_event e;
    e.at = last_read_;
    size_t pos = 0;
    while (pos <= block.size()) {
      size_t nl = block.find('\n', pos);
      std::string line = block.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
      if (line.rfind("event: ", 0) == 0) e.name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) e.data += (e.data.empty() ? "" : "\n") + line.substr(6);
      if (nl == std::string::npos) break;
      pos = nl + 1;
    }
    if (!e.name.empty() || !e.data.empty()) return e;  // a comment-only block is a keepalive
  }
}

std::optional<sse_event> sse_client::next(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (auto e = take_event()) return e;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    // With no time left, still take what has already arrived (next(0) polls).
    if (!receive(std::max<int>(0, static_cast<int>(left.count()))) && left.count() <= 0) return take_event();
    if (closed_) return take_event();
  }
}

std::optional<std::string> http_get(int port, const std::string& path, int timeout_ms) {
  int fd = connect_loopback(port);
  if (fd < 0) return std::nullopt;
  std::string reply;
  bool ok = send_all(fd, get_request(path, false));
  while (ok) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) break;
    char buf[65536];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  size_t end = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 200", 0) != 0 || end == std::string::npos) return std::nullopt;
  return reply.substr(end + 4);
}

}  // namespace poolbus::bench
