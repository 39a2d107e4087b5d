// Table-name splitting and key-type normalization for types read from information_schema.

#include "proxy/control/key_type_names.hpp"

#include <gtest/gtest.h>

#include "proxy/control/catalog_error.hpp"

namespace {

using shardline::control::CatalogError;
using shardline::control::key_type_family;
using shardline::control::normalize_key_type;
using shardline::control::split_table_name;

TEST(KeyTypeNames, TableNamesDefaultToPublic) {
  EXPECT_EQ(split_table_name("orders").schema, "public");
  EXPECT_EQ(split_table_name("orders").table, "orders");
  EXPECT_EQ(split_table_name("sales.orders").schema, "sales");
  EXPECT_EQ(split_table_name("sales.orders").table, "orders");
  EXPECT_THROW(split_table_name("a.b.c"), CatalogError);
  EXPECT_THROW(split_table_name(".orders"), CatalogError);
  EXPECT_THROW(split_table_name("sales."), CatalogError);
  EXPECT_THROW(split_table_name(""), CatalogError);
}

TEST(KeyTypeNames, SupportedTypesNormalize) {
  EXPECT_EQ(normalize_key_type("smallint"), "smallint");
  EXPECT_EQ(normalize_key_type("integer"), "integer");
  EXPECT_EQ(normalize_key_type("bigint"), "bigint");
  EXPECT_EQ(normalize_key_type("text"), "text");
  EXPECT_EQ(normalize_key_type("character varying"), "text");
  EXPECT_EQ(normalize_key_type("uuid"), "uuid");
}

TEST(KeyTypeNames, OtherTypesAreUnsupported) {
  for (const char* t : {"numeric", "character", "date", "timestamp without time zone", "USER-DEFINED", "ARRAY",
                        "bytea", "real", "Integer", ""})
    EXPECT_FALSE(normalize_key_type(t).has_value()) << t;
}

TEST(KeyTypeNames, IntegersShareOneHashFamily) {
  EXPECT_EQ(key_type_family("smallint"), key_type_family("bigint"));
  EXPECT_EQ(key_type_family("integer"), key_type_family("bigint"));
  EXPECT_NE(key_type_family("text"), key_type_family("bigint"));
  EXPECT_NE(key_type_family("uuid"), key_type_family("text"));
}

}  // namespace
