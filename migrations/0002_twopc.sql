-- Two-phase commit (cross_shard_transactions: 2pc). A row of shardline.twopc_log is the
-- decision for one prepared transaction: 'committing' is written by the proxy that coordinates
-- it once every shard has prepared, before any COMMIT PREPARED; 'aborting' by a resolver that
-- found it prepared with no decision and its owner dead. The gid is the primary key, so the
-- first decision written wins and the other writer learns it. Rows are deleted once no shard
-- holds the gid prepared any more.
ALTER TABLE shardline.twopc_log ADD COLUMN IF NOT EXISTS owner text;

-- Live proxy instances: each one's resolver renews its heartbeat every round. A coordinator
-- writes a commit decision only while its own heartbeat is fresh, and a resolver aborts an
-- undecided transaction only when its owner's heartbeat is stale (or its process is gone), so
-- a live owner's transactions are never aborted under it.
CREATE TABLE IF NOT EXISTS shardline.twopc_owners (
    owner     text PRIMARY KEY,               -- the instance part of the gids: host:port:pid:start
    host      text NOT NULL,
    pid       int NOT NULL,
    heartbeat timestamptz NOT NULL DEFAULT now()
);
