// Fuzz target: any bytes as a config file. The loader either returns a config or problems that
// each name FILE:LINE:COL (or FILE: for a whole-file problem); it never crashes or lets another
// exception escape.

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/loader.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view yaml(reinterpret_cast<const char*>(data), size);
  const auto r = shardline::config::parse_config(yaml, "fuzz.yaml");
  if (!r.ok() && r.problems.empty()) std::abort();  // a refusal must say why
  for (const auto& p : r.problems) {
    if (p.file != "fuzz.yaml" || p.message.empty()) std::abort();
    (void)p.str();
  }
  return 0;
}
