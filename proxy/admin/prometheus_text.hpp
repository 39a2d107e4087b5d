#pragma once
// /metrics: the registry and the data plane's live state in the Prometheus text exposition
// format 0.0.4. https://prometheus.io/docs/instrumenting/exposition_formats/

#include <string>

#include "proxy/session/services.hpp"

namespace shardline::proxy::admin {

/// Every family of SPEC section 9 (and a few more), rendered now. Gauges (clients, servers,
/// lag) are read from the sessions, pools and the lag monitor's snapshot at scrape time.
std::string render_prometheus(session::Services& services);

/// A label value escaped as the text format requires (backslash, double quote, newline).
std::string escape_label(std::string_view v);

}  // namespace shardline::proxy::admin
