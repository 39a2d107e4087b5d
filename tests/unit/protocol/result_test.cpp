#include "proxy/protocol/result.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace shardline::proxy::protocol {
namespace {

Result<std::string> echo_or_fail(bool fail) {
  if (fail) return Error{"it failed"};
  return "value";
}

Result<void> check(bool fail) {
  if (fail) return Error{"check failed"};
  return {};
}

TEST(Result, HoldsAValueOrAnError) {
  auto good = echo_or_fail(false);
  ASSERT_TRUE(good.ok());
  EXPECT_TRUE(static_cast<bool>(good));
  EXPECT_EQ(good.value(), "value");
  EXPECT_THROW((void)good.error(), std::bad_variant_access);

  auto bad = echo_or_fail(true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), "it failed");
  EXPECT_THROW((void)bad.value(), std::bad_variant_access);
}

TEST(Result, VoidResult) {
  EXPECT_TRUE(check(false).ok());
  auto bad = check(true);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error(), "check failed");
  EXPECT_THROW(bad.value(), std::bad_variant_access);
  EXPECT_THROW((void)check(false).error(), std::bad_variant_access);
}

TEST(Result, MoveOnlyValues) {
  Result<std::unique_ptr<int>> r = std::make_unique<int>(7);
  ASSERT_TRUE(r.ok());
  std::unique_ptr<int> taken = std::move(r).value();
  EXPECT_EQ(*taken, 7);
}

}  // namespace
}  // namespace shardline::proxy::protocol
