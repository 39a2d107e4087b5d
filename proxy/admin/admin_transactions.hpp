#pragma once
// SHOW TRANSACTIONS: the two-phase commits the resolver's last round found prepared on the
// shards (in doubt), one row per shard holding the gid.

#include "proxy/admin/admin_tables.hpp"

namespace shardline::proxy::admin {

/// gid, owner, shard, prepared_s (age), decision (commit / abort / none yet), owner_is_me.
Table show_transactions(session::Services& s);

}  // namespace shardline::proxy::admin
