// stream_subscriber: a SUB client of the broker's offer stream (protocol.md,
// "Offer stream"). It yields only well-formed [topic, body] messages whose
// topic starts with one of its prefixes.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

#include "bus/security.hpp"
#include "schemas/outcome.hpp"

namespace poolbus {

class stream_subscriber {
 public:
  using topic_and_body = std::pair<std::string, std::string>;

  // Connects and subscribes to `topic_prefix` ("" = every topic). Fails only on
  // a bad endpoint. "EP1,EP2,...": the streams of several brokers at once; a
  // message that repeats, byte for byte, one of the last 4096 yielded (the same
  // worker message republished by another broker) is dropped. As with any SUB socket, messages published before the
  // connection is up are not seen.
  // With `curve` the subscription is CURVE-authenticated (any authorized key).
  static outcome<std::unique_ptr<stream_subscriber>> connect(
      const std::string& endpoint, const std::string& topic_prefix,
      const std::optional<curve_client_keys>& curve = std::nullopt);
  ~stream_subscriber();
  stream_subscriber(const stream_subscriber&) = delete;
  stream_subscriber& operator=(const stream_subscriber&) = delete;

  // Adds another prefix.
  void subscribe(const std::string& topic_prefix);

  // The next message, waiting up to timeout_ms; `timeout` when none came.
  // Messages that are not exactly two frames are skipped.
  outcome<topic_and_body> next(int64_t timeout_ms);

 private:
  struct connection;
  explicit stream_subscriber(std::unique_ptr<connection> conn);

  std::mutex mutex_;
  std::unique_ptr<connection> conn_;
};

}  // namespace poolbus
