// broker_gate: the pool-broker's CURVE security. It makes the four broker
// sockets CURVE servers (each with its ZAP domain and a handshake monitor),
// runs the ZAP handler that admits only authorized keys, and judges each
// inbound message by its sender's identity on the I/O thread.
// Invariant: with the gate on, a message reaches an actor only from a role
// allowed on its socket, and a pool id is served by one worker key at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bus/io_thread.hpp"
#include "bus/security.hpp"
#include "policy/pool_claims.hpp"

namespace poolbus {

class broker_gate {
 public:
  // Loads <dir>/broker.key (generating it when missing and `generate` is set)
  // and <dir>/authorized_keys. Errors name the file and what is wrong.
  static outcome<std::unique_ptr<broker_gate>> load(const std::string& curve_dir, bool generate,
                                                    int64_t worker_timeout_ms);

  // Makes every bound spec a CURVE server with its ZAP domain and monitor. The
  // workers ROUTER gets no handover (a second connection with a live pool's
  // routing id is refused, so no one can steal its route) and ZMTP heartbeats,
  // so a dead worker's pipe is gone within the worker timeout.
  void secure(std::vector<socket_spec>& specs) const;

  // Starts the ZAP handler in the io_thread's context; call before io.start().
  outcome<void> start_zap(io_thread& io);
  // After io.stop(): libzmq admits anyone while no handler is bound.
  void stop_zap();

  // On the I/O thread: whether this message from `user_id` may pass at now_ms
  // (a steady clock's ms: pool claims lapse after the worker timeout). Drops
  // are logged (warn): wrong role for the socket, or a pool held by another key.
  bool admit(channel via, const std::vector<std::string>& frames, const std::string& user_id, int64_t now_ms);

  const std::string& public_key() const { return keys_.public_key; }

  // Thread-safe: the mux paces every pool to this heartbeat (0: none); a
  // pool's claim then lapses only after three of them.
  void on_paced(int64_t heartbeat_ms) { paced_ms_ = heartbeat_ms; }

 private:
  broker_gate(curve_keypair keys, authorized_keys authorized, int64_t worker_timeout_ms);
  bool admit_pool(const std::string& pool, const std::string& user_id, const char* where, int64_t now_ms);

  curve_keypair keys_;
  authorized_keys authorized_;
  int64_t worker_timeout_ms_;
  std::atomic<int64_t> paced_ms_{0};
  pool_claims claims_;
  std::map<std::string, int64_t> last_warned_ms_;  // "<pool>\n<identity>" -> when a drop was last logged
  std::unique_ptr<zap_handler> zap_;
};

}  // namespace poolbus
