// security: ZeroMQ CURVE for the bus. Key pairs on disk (Z85 text; a secret key
// file is refused unless only its owner can read it), the broker's list of
// authorized public keys with their roles, and the ZAP handler that admits a
// peer only if its key is listed with a role allowed on that socket's domain.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "schemas/outcome.hpp"

namespace poolbus {

// A CURVE key pair, each key 40 characters of Z85.
struct curve_keypair {
  std::string public_key;
  std::string secret_key;
};

// What a connecting socket needs: its own pair and the broker's public key.
struct curve_client_keys {
  curve_keypair own;
  std::string server_public;
};

// Who a key is. A role decides which broker sockets its holder may use.
enum class peer_role : uint8_t { worker, client, observer, admin };
std::string_view to_string(peer_role role);
std::optional<peer_role> peer_role_from_string(std::string_view name);

// ZAP domains: each broker socket sets its own, so the handler can judge a
// role per socket.
namespace zap_domain {
constexpr const char* api = "api";            // client ROUTER: client, admin
constexpr const char* stream = "stream";      // offer stream PUB: every role
constexpr const char* workers = "workers";    // workers ROUTER: worker
constexpr const char* announce = "announce";  // announce SUB: worker
}  // namespace zap_domain
bool role_allowed_on(peer_role role, std::string_view domain);

// Key files: <dir>/<name>.key holds the secret key (mode 0600), <dir>/<name>.pub
// the public one. Lines starting with '#' are comments.
constexpr const char* broker_key_name = "broker";
constexpr const char* authorized_keys_file = "authorized_keys";
std::string secret_key_path(const std::string& dir, const std::string& name);
std::string public_key_path(const std::string& dir, const std::string& name);

bool valid_z85_key(std::string_view key);
outcome<curve_keypair> generate_curve_keypair();
outcome<std::string> curve_public_of(const std::string& secret_key);

// Writes NAME.key (0600) and NAME.pub (0644) into dir (created 0700 if missing).
// Refuses to overwrite an existing key file (`precondition`).
outcome<void> write_keypair(const std::string& dir, const std::string& name, const curve_keypair& pair);
// Reads a secret key file; `unauthorized` if group or others may read or write
// it, `invalid` if it holds no valid key, `not_exist` if missing.
outcome<curve_keypair> load_secret_key_file(const std::string& path);
outcome<std::string> load_public_key_file(const std::string& path);

// The broker's pair: <dir>/broker.key. When it is missing and `generate` is set,
// a new pair is written first (logged with its public key).
outcome<curve_keypair> load_broker_keys(const std::string& dir, bool generate);
// A worker's or client's keys: <dir>/<name>.key and <dir>/broker.pub.
outcome<curve_client_keys> load_client_keys(const std::string& dir, const std::string& name);

// One line of authorized_keys: "<role> <z85-public-key> [name]".
struct authorized_key {
  peer_role role = peer_role::client;
  std::string public_key;
  std::string name;  // defaults to the key itself; unique in the file

  // The peer's identity as the broker sees it (ZAP User-Id, meta.owner).
  std::string identity() const;
};

class authorized_keys {
 public:
  // Parses the file's text; a bad line, a duplicate key or a duplicate name is
  // `invalid` naming `source` and the line number.
  static outcome<authorized_keys> parse(std::string_view text, const std::string& source);
  static outcome<authorized_keys> load(const std::string& path);

  const authorized_key* find(const std::string& public_key) const;
  size_t size() const { return by_key_.size(); }

 private:
  std::map<std::string, authorized_key> by_key_;
};

// What the ZAP handler answers for one handshake.
struct zap_verdict {
  bool admitted = false;
  std::string user_id;  // admitted: "<role>:<name>"
  std::string reason;   // refused: why, for the log and the status text
};
zap_verdict decide_zap(const authorized_keys& keys, std::string_view domain, std::string_view mechanism,
                       const std::string& public_key);

// The ZAP handler: a thread with a REP socket on inproc://zeromq.zap.01 in the
// same ZeroMQ context as the sockets it guards. It also reads the given socket
// monitors (inproc PAIR endpoints) and logs failed handshakes, so a plaintext
// or wrong-server-key peer, which never reaches ZAP, is logged too.
class zap_handler {
 public:
  struct monitored_socket {
    std::string endpoint;  // inproc:// endpoint passed to zmq_socket_monitor
    std::string name;      // for the log
  };

  // Binds at once: call before any CURVE server socket of that context is bound
  // (libzmq admits everyone while no handler is bound).
  static outcome<std::unique_ptr<zap_handler>> start(void* zmq_context, authorized_keys keys,
                                                     std::vector<monitored_socket> monitors = {});
  ~zap_handler();  // stops
  zap_handler(const zap_handler&) = delete;
  zap_handler& operator=(const zap_handler&) = delete;

  // Ends the thread and closes its sockets. Idempotent. Also ends by itself
  // when the context is terminated.
  void stop();

  uint64_t admitted() const;
  uint64_t refused() const;            // by ZAP (unknown key, wrong role)
  uint64_t failed_handshakes() const;  // reported by the monitors (e.g. plaintext peers)

  struct state;

 private:
  explicit zap_handler(std::unique_ptr<state> s);
  std::unique_ptr<state> state_;
};

}  // namespace poolbus
