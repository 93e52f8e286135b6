#include "bus/security.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <msgpack.hpp>

#include "bus/api_client.hpp"
#include "bus/envelope.hpp"
#include "bus/io_thread.hpp"
#include "bus/stream_subscriber.hpp"
#include "bus_test_support.hpp"
#include "schemas/api_messages.hpp"

using namespace poolbus;
using poolbus::test::ping_request;
using namespace std::chrono_literals;

namespace {

struct temp_dir {
  std::string path;
  temp_dir() {
    char pattern[] = "/tmp/poolbus-sec-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~temp_dir() { std::filesystem::remove_all(path); }
};

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 0777;
}

curve_keypair new_pair() {
  auto pair = generate_curve_keypair();
  REQUIRE(pair.ok());
  return *pair;
}

authorized_keys keys_of(const std::string& text) {
  auto parsed = authorized_keys::parse(text, "test");
  REQUIRE(parsed.ok());
  return *parsed;
}

}  // namespace

TEST_CASE("security: key pairs are Z85 and the public key derives from the secret", "[security]") {
  auto pair = new_pair();
  CHECK(pair.public_key.size() == 40);
  CHECK(valid_z85_key(pair.public_key));
  CHECK(valid_z85_key(pair.secret_key));
  CHECK(curve_public_of(pair.secret_key).value() == pair.public_key);
  CHECK_FALSE(valid_z85_key("short"));
  CHECK_FALSE(valid_z85_key(std::string(40, '"')));  // '"' is not a Z85 digit
  CHECK(new_pair().public_key != pair.public_key);
}

TEST_CASE("security: key files round-trip with 0600 secrets and refuse overwriting", "[security]") {
  temp_dir dir;
  auto pair = new_pair();
  REQUIRE(write_keypair(dir.path, "alice", pair).ok());
  CHECK(mode_of(secret_key_path(dir.path, "alice")) == 0600);
  CHECK(mode_of(public_key_path(dir.path, "alice")) == 0644);
  auto loaded = load_secret_key_file(secret_key_path(dir.path, "alice"));
  REQUIRE(loaded.ok());
  CHECK(loaded->secret_key == pair.secret_key);
  CHECK(loaded->public_key == pair.public_key);
  CHECK(load_public_key_file(public_key_path(dir.path, "alice")).value() == pair.public_key);

  auto again = write_keypair(dir.path, "alice", new_pair());
  REQUIRE_FALSE(again.ok());
  CHECK(again.error().kind == error_kind::precondition);
  CHECK(load_secret_key_file(secret_key_path(dir.path, "alice"))->secret_key == pair.secret_key);
  CHECK_FALSE(write_keypair(dir.path, "../evil", pair).ok());
}

TEST_CASE("security: a secret key readable by group or others is refused with a clear error", "[security]") {
  temp_dir dir;
  REQUIRE(write_keypair(dir.path, "w1", new_pair()).ok());
  auto path = secret_key_path(dir.path, "w1");
  for (mode_t mode : {0644, 0640, 0604, 0660}) {
    ::chmod(path.c_str(), mode);
    auto loaded = load_secret_key_file(path);
    REQUIRE_FALSE(loaded.ok());
    CHECK(loaded.error().kind == error_kind::unauthorized);
    CHECK_THAT(loaded.error().message, Catch::Contains("chmod 600"));
    CHECK_THAT(loaded.error().message, Catch::Contains(path));
  }
  ::chmod(path.c_str(), 0400);
  CHECK(load_secret_key_file(path).ok());
  auto missing = load_secret_key_file(secret_key_path(dir.path, "nobody"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().kind == error_kind::not_exist);
}

TEST_CASE("security: a secret key file without a valid key is invalid", "[security]") {
  temp_dir dir;
  auto path = secret_key_path(dir.path, "bad");
  std::ofstream(path) << "# comment\nnot-a-key\n";
  ::chmod(path.c_str(), 0600);
  auto loaded = load_secret_key_file(path);
  REQUIRE_FALSE(loaded.ok());
  CHECK(loaded.error().kind == error_kind::invalid);
}

TEST_CASE("security: broker keys are generated on demand and client keys need broker.pub", "[security]") {
  temp_dir dir;
  auto absent = load_broker_keys(dir.path, false);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.error().kind == error_kind::not_exist);
  auto made = load_broker_keys(dir.path, true);
  REQUIRE(made.ok());
  CHECK(load_broker_keys(dir.path, true)->secret_key == made->secret_key);  // kept, not regenerated

  REQUIRE(write_keypair(dir.path, "client", new_pair()).ok());
  auto client = load_client_keys(dir.path, "client");
  REQUIRE(client.ok());
  CHECK(client->server_public == made->public_key);
  std::filesystem::remove(public_key_path(dir.path, "broker"));
  CHECK_FALSE(load_client_keys(dir.path, "client").ok());
}

TEST_CASE("security: authorized_keys parsing", "[security]") {
  auto a = new_pair().public_key, b = new_pair().public_key, c = new_pair().public_key;
  auto keys = keys_of("# who may connect\n\nclient " + a + " alice\n  worker " + b + "\nadmin " + c + " ops\n");
  CHECK(keys.size() == 3);
  REQUIRE(keys.find(a) != nullptr);
  CHECK(keys.find(a)->identity() == "client:alice");
  CHECK(keys.find(b)->identity() == "worker:" + b);  // no name: the key names itself
  CHECK(keys.find(c)->role == peer_role::admin);
  CHECK(keys.find(new_pair().public_key) == nullptr);

  auto bad_role = authorized_keys::parse("root " + a + "\n", "ak");
  REQUIRE_FALSE(bad_role.ok());
  CHECK_THAT(bad_role.error().message, Catch::Contains("ak:1"));
  CHECK_FALSE(authorized_keys::parse("client notakey\n", "ak").ok());
  CHECK_FALSE(authorized_keys::parse("client " + a + " x\nworker " + a + " y\n", "ak").ok());  // same key twice
  CHECK_FALSE(authorized_keys::parse("client " + a + " x\nworker " + b + " x\n", "ak").ok());  // same name twice
  CHECK_FALSE(authorized_keys::parse("client " + a + " x extra\n", "ak").ok());
  CHECK_FALSE(authorized_keys::parse("client " + a + " a:b\n", "ak").ok());
}

TEST_CASE("security: ZAP admits known keys only on the sockets their role may use", "[security]") {
  auto w = new_pair().public_key, cl = new_pair().public_key, o = new_pair().public_key, ad = new_pair().public_key;
  auto keys = keys_of("worker " + w + " w1\nclient " + cl + " alice\nobserver " + o + " dash\nadmin " + ad + " ops\n");

  auto alice = decide_zap(keys, zap_domain::api, "CURVE", cl);
  CHECK(alice.admitted);
  CHECK(alice.user_id == "client:alice");
  CHECK(decide_zap(keys, zap_domain::api, "CURVE", ad).admitted);
  CHECK_FALSE(decide_zap(keys, zap_domain::api, "CURVE", w).admitted);
  CHECK_FALSE(decide_zap(keys, zap_domain::api, "CURVE", o).admitted);

  CHECK(decide_zap(keys, zap_domain::workers, "CURVE", w).user_id == "worker:w1");
  CHECK(decide_zap(keys, zap_domain::announce, "CURVE", w).admitted);
  CHECK_FALSE(decide_zap(keys, zap_domain::workers, "CURVE", cl).admitted);
  CHECK_FALSE(decide_zap(keys, zap_domain::announce, "CURVE", ad).admitted);

  for (const auto& k : {w, cl, o, ad}) CHECK(decide_zap(keys, zap_domain::stream, "CURVE", k).admitted);

  auto stranger = decide_zap(keys, zap_domain::stream, "CURVE", new_pair().public_key);
  CHECK_FALSE(stranger.admitted);
  CHECK(stranger.reason == "unknown key");
  CHECK_FALSE(decide_zap(keys, zap_domain::api, "NULL", "").admitted);
  CHECK_FALSE(decide_zap(keys, "elsewhere", "CURVE", cl).admitted);
}

namespace {

// A CURVE ROUTER with a ZAP handler in its context, echoing pings and
// remembering who sent them.
class curve_router {
 public:
  curve_router(const curve_keypair& server, authorized_keys keys)
      : bus_({spec(server)}, io_thread::authenticated_handler(
                                 [this](channel, std::vector<std::string>&& frames, std::string&& user_id) {
                                   {
                                     std::lock_guard<std::mutex> guard(mutex_);
                                     senders_.push_back(user_id);
                                   }
                                   auto request = split_router_message(std::move(frames));
                                   if (request.well_formed)
                                     bus_.post(make_reply(channel::api, std::move(request.route),
                                                          encode_ok_reply(reply_id_raw(request.body))));
                                 })) {
    auto zap = zap_handler::start(bus_.zmq_context(), std::move(keys), {{"inproc://test-monitor-api", "api"}});
    REQUIRE(zap.ok());
    zap_ = std::move(*zap);
    REQUIRE(bus_.start().ok());
  }
  ~curve_router() {
    bus_.stop();
    zap_.reset();
  }
  std::string endpoint() const { return bus_.bound_endpoint(channel::api); }
  zap_handler& zap() { return *zap_; }
  std::vector<std::string> senders() {
    std::lock_guard<std::mutex> guard(mutex_);
    return senders_;
  }

 private:
  static socket_spec spec(const curve_keypair& server) {
    auto s = socket_spec::bound(channel::api, socket_kind::router, "tcp://127.0.0.1:*");
    s.curve.server_secret = server.secret_key;
    s.curve.zap_domain = zap_domain::api;
    s.curve.monitor_endpoint = "inproc://test-monitor-api";
    return s;
  }

  std::mutex mutex_;
  std::vector<std::string> senders_;
  io_thread bus_;
  std::unique_ptr<zap_handler> zap_;
};

}  // namespace

TEST_CASE("security: over CURVE only authorized clients get answers, and the handler learns who", "[security]") {
  auto server = new_pair(), alice = new_pair(), worker = new_pair(), stranger = new_pair();
  curve_router router(server, keys_of("client " + alice.public_key + " alice\nworker " + worker.public_key + " w1\n"));

  auto good = api_client::connect(router.endpoint(), curve_client_keys{alice, server.public_key});
  REQUIRE(good.ok());
  REQUIRE((*good)->call(ping_request(1), 3000).ok());
  CHECK(router.senders() == std::vector<std::string>{"client:alice"});
  CHECK(router.zap().admitted() >= 1);

  auto unknown = api_client::connect(router.endpoint(), curve_client_keys{stranger, server.public_key});
  REQUIRE(unknown.ok());
  auto refused = (*unknown)->call(ping_request(2), 300);
  REQUIRE_FALSE(refused.ok());
  CHECK(refused.error().kind == error_kind::timeout);
  CHECK(test::wait_until([&] { return router.zap().refused() >= 1; }));

  auto wrong_role = api_client::connect(router.endpoint(), curve_client_keys{worker, server.public_key});
  REQUIRE(wrong_role.ok());
  CHECK_FALSE((*wrong_role)->call(ping_request(3), 300).ok());

  auto wrong_server = api_client::connect(router.endpoint(), curve_client_keys{alice, new_pair().public_key});
  REQUIRE(wrong_server.ok());
  CHECK_FALSE((*wrong_server)->call(ping_request(4), 300).ok());

  auto plaintext = api_client::connect(router.endpoint());
  REQUIRE(plaintext.ok());
  CHECK_FALSE((*plaintext)->call(ping_request(5), 300).ok());
  CHECK(test::wait_until([&] { return router.zap().failed_handshakes() >= 1; }));

  CHECK(router.senders() == std::vector<std::string>{"client:alice"});  // nobody else got through
  CHECK((*good)->call(ping_request(6), 3000).ok());
}
