#pragma once
// The dashboard served at `/`: one self-contained page (HTML, CSS and JavaScript, no external
// asset, no request to another host) that polls the JSON API of the same origin.

#include <string_view>

namespace shardline::proxy::admin {

extern const std::string_view kDashboardHtml;

}  // namespace shardline::proxy::admin
