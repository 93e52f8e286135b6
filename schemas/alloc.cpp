#include "schemas/alloc.hpp"

#include "schemas/sha256.hpp"

namespace poolbus {

outcome<PoolUri> parse_pool_uri(const std::string& uri) {
  auto slash = uri.find('/');
  if (slash == std::string::npos)
    return make_pool_error(error_kind::invalid, "uri \"" + uri + "\" has no '/' (want <pool>/<id>)");
  PoolUri out{uri.substr(0, slash), uri.substr(slash + 1)};
  if (out.pool.empty() || out.local.empty())
    return make_pool_error(error_kind::invalid, "uri \"" + uri + "\" has an empty pool or id");
  return out;
}

std::string local_id_of(const std::string& id) {
  auto slash = id.find('/');
  return slash == std::string::npos ? id : id.substr(slash + 1);
}

bool valid_pool_id(const std::string& id) { return !id.empty() && id.find('/') == std::string::npos; }

std::string make_pool_uri(const std::string& pool, const std::string& local) { return pool + "/" + local; }

std::string taskdb_alloc_id(const std::string& alloc_uri) { return "sha256:" + sha256_hex(alloc_uri); }

}  // namespace poolbus
