#include "bus/security.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include <spdlog/spdlog.h>
#include <zmq.h>

namespace poolbus {
namespace {

constexpr size_t z85_key_chars = 40;
constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// The first line that is neither blank nor a comment. A Z85 key may itself
// start with '#', so a valid key line is never taken for a comment.
outcome<std::string> read_key_line(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    if (errno == ENOENT) return make_pool_error(error_kind::not_exist, "key file " + path + " does not exist");
    return make_pool_error(error_kind::invalid, "cannot read key file " + path + ": " + std::strerror(errno));
  }
  std::string line;
  while (std::getline(in, line)) {
    auto t = trim(line);
    if (t.empty() || (t[0] == '#' && !valid_z85_key(t))) continue;
    if (!valid_z85_key(t)) return make_pool_error(error_kind::invalid, "key file " + path + " holds no valid Z85 key");
    return t;
  }
  return make_pool_error(error_kind::invalid, "key file " + path + " is empty");
}

// Writes `text` to a new file with `mode`; refuses if it exists.
outcome<void> write_new_file(const std::string& path, const std::string& text, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
  if (fd < 0) {
    if (errno == EEXIST)
      return make_pool_error(error_kind::precondition, path + " exists; refusing to overwrite a key");
    return make_pool_error(error_kind::internal, "cannot create " + path + ": " + std::strerror(errno));
  }
  // The umask may have narrowed the mode; a public key should stay readable.
  ::fchmod(fd, mode);
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return make_pool_error(error_kind::internal, "cannot write " + path + ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return {};
}

bool is_domain(std::string_view d, const char* name) { return d == name; }

}  // namespace

std::string_view to_string(peer_role role) {
  switch (role) {
    case peer_role::worker: return "worker";
    case peer_role::client: return "client";
    case peer_role::observer: return "observer";
    case peer_role::admin: return "admin";
  }
  return "unknown";
}

std::optional<peer_role> peer_role_from_string(std::string_view name) {
  for (auto role : {peer_role::worker, peer_role::client, peer_role::observer, peer_role::admin})
    if (to_string(role) == name) return role;
  return std::nullopt;
}

bool role_allowed_on(peer_role role, std::string_view domain) {
  if (is_domain(domain, zap_domain::api)) return role == peer_role::client || role == peer_role::admin;
  if (is_domain(domain, zap_domain::workers) || is_domain(domain, zap_domain::announce))
    return role == peer_role::worker;
  if (is_domain(domain, zap_domain::stream)) return true;  // read-only: any known key may watch
  return false;                                            // an unknown domain admits nobody
}

std::string secret_key_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / (name + ".key")).string();
}

std::string public_key_path(const std::string& dir, const std::string& name) {
  return (std::filesystem::path(dir) / (name + ".pub")).string();
}

bool valid_z85_key(std::string_view key) {
  if (key.size() != z85_key_chars) return false;
  uint8_t decoded[32];
  std::string copy(key);
  return zmq_z85_decode(decoded, copy.c_str()) != nullptr;
}

outcome<curve_keypair> generate_curve_keypair() {
  char pub[41], sec[41];
  if (zmq_curve_keypair(pub, sec) != 0)
    return make_pool_error(
        error_kind::internal,
        std::string("cannot generate a CURVE key pair (libzmq without CURVE?): ") + zmq_strerror(zmq_errno()));
  return curve_keypair{pub, sec};
}

outcome<std::string> curve_public_of(const std::string& secret_key) {
  if (!valid_z85_key(secret_key)) return make_pool_error(error_kind::invalid, "not a Z85 CURVE secret key");
  char pub[41];
  if (zmq_curve_public(pub, secret_key.c_str()) != 0)
    return make_pool_error(error_kind::internal,
                           std::string("cannot derive a public key: ") + zmq_strerror(zmq_errno()));
  return std::string(pub);
}

outcome<void> write_keypair(const std::string& dir, const std::string& name, const curve_keypair& pair) {
  if (name.empty() || name.find('/') != std::string::npos || name[0] == '.')
    return make_pool_error(error_kind::invalid, "key name \"" + name + "\" must be non-empty, without '/'");
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    std::filesystem::create_directories(dir, ec);
    if (ec) return make_pool_error(error_kind::internal, "cannot create " + dir + ": " + ec.message());
    ::chmod(dir.c_str(), 0700);
  }
  auto secret = secret_key_path(dir, name), pub = public_key_path(dir, name);
  auto wrote = write_new_file(
      secret, "# poolbus CURVE secret key \"" + name + "\": keep it private (0600)\n" + pair.secret_key + "\n", 0600);
  if (!wrote) return wrote;
  return write_new_file(pub, "# poolbus CURVE public key \"" + name + "\"\n" + pair.public_key + "\n", 0644);
}

outcome<curve_keypair> load_secret_key_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return make_pool_error(error_kind::not_exist, "key file " + path + " does not exist");
    return make_pool_error(error_kind::invalid, "cannot stat " + path + ": " + std::strerror(errno));
  }
  if (st.st_mode & (S_IRWXG | S_IRWXO)) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return make_pool_error(error_kind::unauthorized, "secret key file " + path +
                                                         " is accessible by group/others (mode " + mode +
                                                         "); refusing it: chmod 600 " + path);
  }
  auto secret = read_key_line(path);
  if (!secret) return secret.error();
  auto pub = curve_public_of(*secret);
  if (!pub) return pub.error();
  return curve_keypair{*pub, *secret};
}

outcome<std::string> load_public_key_file(const std::string& path) { return read_key_line(path); }

outcome<curve_keypair> load_broker_keys(const std::string& dir, bool generate) {
  auto path = secret_key_path(dir, broker_key_name);
  auto loaded = load_secret_key_file(path);
  if (loaded || loaded.error().kind != error_kind::not_exist || !generate) return loaded;
  auto pair = generate_curve_keypair();
  if (!pair) return pair.error();
  auto wrote = write_keypair(dir, broker_key_name, *pair);
  if (!wrote) return wrote.error();
  spdlog::info("security: generated the broker key pair in {} (public key {})", dir, pair->public_key);
  return load_secret_key_file(path);
}

outcome<curve_client_keys> load_client_keys(const std::string& dir, const std::string& name) {
  auto own = load_secret_key_file(secret_key_path(dir, name));
  if (!own) return own.error();
  auto server = load_public_key_file(public_key_path(dir, broker_key_name));
  if (!server) return server.error();
  return curve_client_keys{std::move(*own), std::move(*server)};
}

std::string authorized_key::identity() const { return std::string(to_string(role)) + ":" + name; }

outcome<authorized_keys> authorized_keys::parse(std::string_view text, const std::string& source) {
  authorized_keys keys;
  std::set<std::string> names;
  std::istringstream in{std::string(text)};
  std::string line;
  int number = 0;
  while (std::getline(in, line)) {
    ++number;
    auto t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    auto where = source + ":" + std::to_string(number) + ": ";
    std::istringstream fields(t);
    std::string role_name, key, name, extra;
    fields >> role_name >> key >> name >> extra;
    if (!extra.empty()) return make_pool_error(error_kind::invalid, where + "want \"<role> <public-key> [name]\"");
    auto role = peer_role_from_string(role_name);
    if (!role)
      return make_pool_error(error_kind::invalid,
                             where + "unknown role \"" + role_name + "\" (worker, client, observer, admin)");
    if (!valid_z85_key(key)) return make_pool_error(error_kind::invalid, where + "not a Z85 CURVE public key");
    if (name.find(':') != std::string::npos)
      return make_pool_error(error_kind::invalid, where + "a name may not contain ':'");
    if (name.empty()) name = key;  // a Z85 key may contain ':', but the role is always before the first one
    if (keys.by_key_.count(key)) return make_pool_error(error_kind::invalid, where + "key listed twice");
    if (!names.insert(name).second)
      return make_pool_error(error_kind::invalid, where + "name \"" + name + "\" used twice");
    keys.by_key_.emplace(key, authorized_key{*role, key, name});
  }
  return keys;
}

outcome<authorized_keys> authorized_keys::load(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    return make_pool_error(error_kind::not_exist, "cannot read authorized keys " + path + ": " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

const authorized_key* authorized_keys::find(const std::string& public_key) const {
  auto it = by_key_.find(public_key);
  return it == by_key_.end() ? nullptr : &it->second;
}

zap_verdict decide_zap(const authorized_keys& keys, std::string_view domain, std::string_view mechanism,
                       const std::string& public_key) {
  if (mechanism != "CURVE") return {false, {}, "mechanism " + std::string(mechanism) + " is not CURVE"};
  const authorized_key* known = keys.find(public_key);
  if (known == nullptr) return {false, {}, "unknown key"};
  if (!role_allowed_on(known->role, domain))
    return {
        false,
        {},
        "role " + std::string(to_string(known->role)) + " (" + known->name + ") may not use " + std::string(domain)};
  return {true, known->identity(), {}};
}

// ---------------------------------------------------------------------------
// The ZAP handler thread (plain libzmq C API: the context is the io_thread's).

namespace {

std::vector<std::string> receive_all(void* socket) {
  std::vector<std::string> frames;
  for (;;) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, socket, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&msg);
      return frames;
    }
    frames.emplace_back(static_cast<const char*>(zmq_msg_data(&msg)), zmq_msg_size(&msg));
    bool more = zmq_msg_more(&msg);
    zmq_msg_close(&msg);
    if (!more) return frames;
  }
}

void send_all(void* socket, const std::vector<std::string>& frames) {
  for (size_t i = 0; i < frames.size(); ++i)
    zmq_send(socket, frames[i].data(), frames[i].size(), i + 1 < frames.size() ? ZMQ_SNDMORE : 0);
}

std::string describe_handshake_failure(uint16_t event, uint32_t value) {
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) return "security mechanism mismatch (a plaintext peer?)";
    if (value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) return "cryptographic error (a wrong broker public key?)";
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", value);
    return std::string("protocol error ") + hex;
  }
  if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return "refused by ZAP (status " + std::to_string(value) + ")";
  return std::string("handshake failed (") + zmq_strerror(static_cast<int>(value)) +
         "): a plaintext peer, or one that hung up";
}

}  // namespace

struct zap_handler::state {
  void* context = nullptr;
  authorized_keys keys;
  std::vector<monitored_socket> monitors;
  void* rep = nullptr;
  std::vector<void*> monitor_sockets;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<uint64_t> admitted{0}, refused{0}, failed{0};

  void answer(const std::vector<std::string>& request) {
    // ZAP 1.0 (RFC 27): version, request id, domain, address, routing id,
    // mechanism, credentials...
    if (request.size() < 6 || request[0] != "1.0") {
      spdlog::warn("security: malformed ZAP request of {} frames", request.size());
      send_all(rep, {"1.0", request.size() > 1 ? request[1] : "", "500", "malformed ZAP request", "", ""});
      return;
    }
    const std::string& domain = request[2];
    const std::string& address = request[3];
    const std::string& mechanism = request[5];
    std::string key;
    if (mechanism == "CURVE" && request.size() >= 7 && request[6].size() == 32) {
      char z85[41];
      zmq_z85_encode(z85, reinterpret_cast<const uint8_t*>(request[6].data()), 32);
      key = z85;
    }
    auto verdict = decide_zap(keys, domain, mechanism, key);
    if (verdict.admitted) {
      admitted.fetch_add(1, std::memory_order_relaxed);
      spdlog::debug("security: admitted {} on {} from {}", verdict.user_id, domain, address);
      send_all(rep, {"1.0", request[1], "200", "OK", verdict.user_id, ""});
    } else {
      refused.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("security: refused key {} on {} from {}: {}", key.empty() ? "(none)" : key, domain, address,
                   verdict.reason);
      send_all(rep, {"1.0", request[1], "400", verdict.reason, "", ""});
    }
  }

  void on_monitor_event(size_t index) {
    auto frames = receive_all(monitor_sockets[index]);
    if (frames.size() < 2 || frames[0].size() < 6) return;
    uint16_t event = 0;
    uint32_t value = 0;
    std::memcpy(&event, frames[0].data(), 2);
    std::memcpy(&value, frames[0].data() + 2, 4);
    // ZAP refusals are logged by answer() with the key; the monitor adds the
    // failures that never reach ZAP (plaintext peers, wrong server key).
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) return;
    failed.fetch_add(1, std::memory_order_relaxed);
    // libzmq names the listening endpoint here, not the peer.
    spdlog::warn("security: refused a connection on {} ({}): {}", monitors[index].name, frames[1],
                 describe_handshake_failure(event, value));
  }

  void run() {
    std::vector<zmq_pollitem_t> items;
    items.push_back({nullptr, wake_fd, ZMQ_POLLIN, 0});
    items.push_back({rep, 0, ZMQ_POLLIN, 0});
    for (void* m : monitor_sockets) items.push_back({m, 0, ZMQ_POLLIN, 0});
    for (;;) {
      int n = zmq_poll(items.data(), static_cast<int>(items.size()), -1);
      if (n < 0) {
        if (zmq_errno() == EINTR) continue;
        break;  // ETERM: the context is closing
      }
      if (items[0].revents & ZMQ_POLLIN) break;
      if (items[1].revents & ZMQ_POLLIN) {
        auto request = receive_all(rep);
        if (!request.empty()) answer(request);
      }
      for (size_t i = 2; i < items.size(); ++i)
        if (items[i].revents & ZMQ_POLLIN) on_monitor_event(i - 2);
    }
    close_sockets();
  }

  void close_sockets() {
    int zero = 0;
    for (void* m : monitor_sockets) {
      zmq_setsockopt(m, ZMQ_LINGER, &zero, sizeof zero);
      zmq_close(m);
    }
    monitor_sockets.clear();
    if (rep) {
      zmq_setsockopt(rep, ZMQ_LINGER, &zero, sizeof zero);
      zmq_close(rep);
      rep = nullptr;
    }
  }
};

outcome<std::unique_ptr<zap_handler>> zap_handler::start(void* zmq_context, authorized_keys keys,
                                                         std::vector<monitored_socket> monitors) {
  auto s = std::make_unique<state>();
  s->context = zmq_context;
  s->keys = std::move(keys);
  s->monitors = std::move(monitors);
  s->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->wake_fd < 0) return make_pool_error(error_kind::internal, "security: cannot create an eventfd");
  s->rep = zmq_socket(zmq_context, ZMQ_REP);
  if (s->rep == nullptr || zmq_bind(s->rep, zap_endpoint) != 0) {
    auto message = std::string("security: cannot bind the ZAP handler: ") + zmq_strerror(zmq_errno());
    s->close_sockets();
    ::close(s->wake_fd);
    return make_pool_error(error_kind::internal, message);
  }
  for (const auto& m : s->monitors) {
    void* pair = zmq_socket(zmq_context, ZMQ_PAIR);
    if (pair == nullptr || zmq_connect(pair, m.endpoint.c_str()) != 0) {
      auto message = "security: cannot watch " + m.endpoint + ": " + zmq_strerror(zmq_errno());
      if (pair) zmq_close(pair);
      s->close_sockets();
      ::close(s->wake_fd);
      return make_pool_error(error_kind::internal, message);
    }
    s->monitor_sockets.push_back(pair);
  }
  spdlog::info("security: ZAP handler up with {} authorized keys", s->keys.size());
  s->thread = std::thread([p = s.get()] { p->run(); });
  return std::unique_ptr<zap_handler>(new zap_handler(std::move(s)));
}

zap_handler::zap_handler(std::unique_ptr<state> s) : state_(std::move(s)) {}

zap_handler::~zap_handler() {
  stop();
  if (state_->wake_fd >= 0) ::close(state_->wake_fd);
}

void zap_handler::stop() {
  if (!state_->thread.joinable()) return;
  uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(state_->wake_fd, &one, sizeof one);
  state_->thread.join();
}

uint64_t zap_handler::admitted() const { return state_->admitted.load(std::memory_order_relaxed); }
uint64_t zap_handler::refused() const { return state_->refused.load(std::memory_order_relaxed); }
uint64_t zap_handler::failed_handshakes() const { return state_->failed.load(std::memory_order_relaxed); }

}  // namespace poolbus
