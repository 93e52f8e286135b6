// web_assets: the page's static files (web/), built into the binary by
// embed_web.cmake so pool-dash needs nothing beside it and no CDN.
#pragma once

#include <string_view>
#include <vector>

namespace poolbus {

struct web_asset {
  std::string_view path;          // "/app.js"
  std::string_view content_type;  // "text/javascript; charset=utf-8"
  std::string_view body;
};

const std::vector<web_asset>& web_assets();

}  // namespace poolbus
