#include "broker/broker_gate.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>

#include "policy/alloc_ownership.hpp"
#include "policy/liveness.hpp"
#include "schemas/worker_messages.hpp"

namespace poolbus {
namespace {

const char* domain_of(channel via) {
  switch (via) {
    case channel::api: return zap_domain::api;
    case channel::stream: return zap_domain::stream;
    case channel::workers: return zap_domain::workers;
    case channel::announce: return zap_domain::announce;
    default: return "";
  }
}

bool role_is(const std::string& user_id, std::initializer_list<peer_role> roles) {
  auto role = role_of_identity(user_id);
  return std::any_of(roles.begin(), roles.end(), [&](peer_role r) { return to_string(r) == role; });
}

}  // namespace

outcome<std::unique_ptr<broker_gate>> broker_gate::load(const std::string& curve_dir, bool generate,
                                                        int64_t worker_timeout_ms) {
  auto keys = load_broker_keys(curve_dir, generate);
  if (!keys) {
    auto e = keys.error();
    if (e.kind == error_kind::not_exist) e.message += " (run with --curve-generate, or poolctl keygen --name broker)";
    return e;
  }
  auto authorized_path = (std::filesystem::path(curve_dir) / authorized_keys_file).string();
  auto authorized = authorized_keys::load(authorized_path);
  if (!authorized) return authorized.error();
  if (authorized->size() == 0) spdlog::warn("security: {} lists no keys: every peer will be refused", authorized_path);
  return std::unique_ptr<broker_gate>(new broker_gate(std::move(*keys), std::move(*authorized), worker_timeout_ms));
}

broker_gate::broker_gate(curve_keypair keys, authorized_keys authorized, int64_t worker_timeout_ms)
    : keys_(std::move(keys)),
      authorized_(std::move(authorized)),
      worker_timeout_ms_(worker_timeout_ms),
      claims_(worker_timeout_ms) {}

void broker_gate::secure(std::vector<socket_spec>& specs) const {
  for (auto& spec : specs) {
    if (spec.attach != socket_attach::bind) continue;
    spec.curve.server_secret = keys_.secret_key;
    spec.curve.zap_domain = domain_of(spec.via);
    spec.curve.monitor_endpoint = std::string("inproc://poolbus-monitor-") + domain_of(spec.via);
    if (spec.via == channel::workers) {
      spec.router_handover = false;
      spec.heartbeat_ivl_ms = static_cast<int>(std::max<int64_t>(100, worker_timeout_ms_ / 4));
      spec.heartbeat_timeout_ms = static_cast<int>(std::max<int64_t>(300, worker_timeout_ms_));
    }
  }
}

outcome<void> broker_gate::start_zap(io_thread& io) {
  std::vector<zap_handler::monitored_socket> monitors;
  for (auto via : {channel::api, channel::stream, channel::workers, channel::announce})
    monitors.push_back({std::string("inproc://poolbus-monitor-") + domain_of(via), domain_of(via)});
  auto started = zap_handler::start(io.zmq_context(), authorized_, std::move(monitors));
  if (!started) return started.error();
  zap_ = std::move(*started);
  spdlog::info("security: CURVE on, broker public key {}", keys_.public_key);
  return {};
}

void broker_gate::stop_zap() { zap_.reset(); }

bool broker_gate::admit_pool(const std::string& pool, const std::string& user_id, const char* where, int64_t now_ms) {
  claims_.set_expiry_ms(liveness::silent_after_ms(worker_timeout_ms_, paced_ms_));
  if (claims_.claim(pool, user_id, now_ms)) return true;
  auto holder = claims_.holder(pool, now_ms);
  // An impostor repeats itself every heartbeat: warn once per worker timeout.
  if (last_warned_ms_.size() > 10000) last_warned_ms_.clear();  // bounded, whatever peers send
  auto& warned = last_warned_ms_[pool + "\n" + user_id];
  if (warned != 0 && now_ms - warned < worker_timeout_ms_) {
    spdlog::debug("security: dropped {} for pool {} from {}", where, pool, user_id);
    return false;
  }
  warned = now_ms;
  spdlog::warn("security: dropped {} for pool {} from {}: the pool is live under {}", where, pool, user_id,
               holder ? *holder : "another key");
  return false;
}

bool broker_gate::admit(channel via, const std::vector<std::string>& frames, const std::string& user_id,
                        int64_t now_ms) {
  switch (via) {
    case channel::api:
      if (role_is(user_id, {peer_role::client, peer_role::admin})) return true;
      spdlog::warn("security: dropped an API request from \"{}\" (not a client or admin)", user_id);
      return false;
    case channel::workers:
      if (!role_is(user_id, {peer_role::worker})) {
        spdlog::warn("security: dropped a workers message from \"{}\" (not a worker)", user_id);
        return false;
      }
      // frames[0] is the routing id, which the broker routes by: the pool id.
      return frames.empty() || admit_pool(frames[0], user_id, "a worker message", now_ms);
    case channel::announce: {
      if (!role_is(user_id, {peer_role::worker})) {
        spdlog::warn("security: dropped an announcement from \"{}\" (not a worker)", user_id);
        return false;
      }
      if (frames.size() != 2) return true;  // malformed: the intake drops it
      const std::string& topic = frames[0];
      auto dot = topic.find('.');
      if (dot == std::string::npos) return true;
      auto pool = topic.substr(dot + 1);
      if (!admit_pool(pool, user_id, "an announcement", now_ms)) return false;
      if (topic.rfind("pools.", 0) == 0) {
        auto event = decode_pool_event(frames[1]);
        // The holder says it stopped: another key may take the id at once.
        if (event && event->event == pool_event_kind::stopped && event->pool == pool) claims_.release(pool, user_id);
      }
      return true;
    }
    default: return true;
  }
}

}  // namespace poolbus
