// probe_yaml_parse: yaml-cpp's LoadAll tried in a child process with limits (see the header).

#include "config/yaml_parse_probe.hpp"

#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

namespace shardline::config::detail {

namespace {

constexpr rlim_t kCpuSeconds = 1;
constexpr rlim_t kAddressSpace = rlim_t{1} << 30;
constexpr auto kWallClock = std::chrono::seconds(3);

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kSanitized = true;  // ASan's shadow memory is address space: no limit can fit it
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

/// The process's address space now (/proc/self/statm, in pages), 0 if unknown.
rlim_t address_space_now() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long pages = 0;
  const int n = std::fscanf(f, "%lu", &pages);
  std::fclose(f);
  return n == 1 ? rlim_t(pages) * rlim_t(sysconf(_SC_PAGESIZE)) : 0;
}

[[noreturn]] void parse_in_child(const std::string& text, rlim_t address_space) {
  const rlimit cpu{kCpuSeconds, kCpuSeconds + 1};
  setrlimit(RLIMIT_CPU, &cpu);
  if (address_space > 0) {  // what the process had (threads' stacks, arenas) plus the parse's share
    const rlimit as{address_space + kAddressSpace, address_space + kAddressSpace};
    setrlimit(RLIMIT_AS, &as);
  }
  try {
    (void)YAML::LoadAll(text);
  } catch (const YAML::Exception&) {  // a syntax error: the parent reports it with its mark
  } catch (...) {
    _exit(2);  // std::bad_alloc: over the memory limit
  }
  _exit(0);
}

}  // namespace

ParseProbe probe_yaml_parse(std::string_view text) {
  const std::string copy(text);  // made before fork: the child allocates as little as it can
  const rlim_t address_space = kSanitized ? 0 : address_space_now();
  const pid_t pid = fork();
  if (pid < 0) return ParseProbe::Unknown;
  if (pid == 0) parse_in_child(copy, address_space);
  const auto deadline = std::chrono::steady_clock::now() + kWallClock;
  auto pause = std::chrono::microseconds(50);
  for (;;) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? ParseProbe::Finishes : ParseProbe::Runaway;
    if (r < 0) return ParseProbe::Unknown;  // reaped elsewhere (a SIGCHLD handler): cannot tell
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return ParseProbe::Runaway;
    }
    std::this_thread::sleep_for(pause);
    if (pause < std::chrono::milliseconds(5)) pause *= 2;
  }
}

}  // namespace shardline::config::detail
