-- The catalog of shardline (SPEC.md section 8): the live directory with its epoch, and the
-- durable state of reshard jobs and two-phase commits. Every proxy that shares this catalog
-- follows the directory; the YAML `directory` only seeds it on first start.
--
-- Applied by shardline itself (proxy/control/catalog.cpp) in one transaction under an advisory
-- lock and recorded in shardline.schema_migrations with the file's SHA-256. Every statement is
-- safe to run again, so a catalog whose bookkeeping row was lost can still be migrated.

CREATE SCHEMA IF NOT EXISTS shardline;

CREATE TABLE IF NOT EXISTS shardline.schema_migrations (
    version    int PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,               -- hex SHA-256 of the migration file as applied
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- Logical shard -> physical shard. Shard names are the keys of the YAML `shards` map; they are
-- not a foreign key because the set of shards is configuration, checked by every reader.
CREATE TABLE IF NOT EXISTS shardline.directory (
    logical int PRIMARY KEY CHECK (logical >= 0),
    shard   text NOT NULL CHECK (shard <> '')
);

-- A single row: the version of the directory. Proxies compare epochs to know whether the
-- snapshot they route with is current; `bumped_in_xact` makes one transaction one epoch, however
-- many rows it changes (seeding 1024 rows is epoch 1, a reshard flip is one step).
CREATE TABLE IF NOT EXISTS shardline.directory_epoch (
    id             bool PRIMARY KEY DEFAULT true CHECK (id),
    epoch          bigint NOT NULL CHECK (epoch >= 0),
    bumped_in_xact bigint
);
INSERT INTO shardline.directory_epoch (id, epoch) VALUES (true, 0) ON CONFLICT (id) DO NOTHING;

-- Any change of the directory, by shardline or by hand, advances the epoch and tells every
-- listening proxy (the notification is delivered at commit, so a reader sees the new rows).
CREATE OR REPLACE FUNCTION shardline.bump_directory_epoch() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    new_epoch bigint;
BEGIN
    UPDATE shardline.directory_epoch
       SET epoch = epoch + 1, bumped_in_xact = txid_current()
     WHERE id AND bumped_in_xact IS DISTINCT FROM txid_current()
    RETURNING epoch INTO new_epoch;
    IF FOUND THEN
        PERFORM pg_notify('shardline_directory', new_epoch::text);
    END IF;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS directory_insert_delete ON shardline.directory;
CREATE TRIGGER directory_insert_delete AFTER INSERT OR DELETE ON shardline.directory
    FOR EACH ROW EXECUTE FUNCTION shardline.bump_directory_epoch();
-- An UPDATE that rewrites a row with the same values does not move the directory.
DROP TRIGGER IF EXISTS directory_update ON shardline.directory;
CREATE TRIGGER directory_update AFTER UPDATE ON shardline.directory
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION shardline.bump_directory_epoch();
DROP TRIGGER IF EXISTS directory_truncate ON shardline.directory;
CREATE TRIGGER directory_truncate AFTER TRUNCATE ON shardline.directory
    FOR EACH STATEMENT EXECUTE FUNCTION shardline.bump_directory_epoch();

-- Online moves of one logical shard (`shardline reshard move`). A job survives a proxy restart,
-- so its state lives here; at most one job runs at a time.
CREATE TABLE IF NOT EXISTS shardline.reshard_jobs (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    logical    int NOT NULL CHECK (logical >= 0),
    source     text NOT NULL,
    target     text NOT NULL CHECK (target <> source),
    state      text NOT NULL,               -- terminal states: done, aborted, failed
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    error      text
);
CREATE UNIQUE INDEX IF NOT EXISTS reshard_jobs_one_running ON shardline.reshard_jobs ((true))
    WHERE state NOT IN ('done', 'aborted', 'failed');

-- Cross-shard transactions committed with two-phase commit: the decision is recorded here
-- before COMMIT PREPARED is sent, so in-doubt prepared transactions can be resolved after a crash.
CREATE TABLE IF NOT EXISTS shardline.twopc_log (
    gid        text PRIMARY KEY,            -- the PREPARE TRANSACTION identifier on every shard
    shards     text[] NOT NULL CHECK (cardinality(shards) > 0),
    state      text NOT NULL CHECK (state IN ('preparing', 'committing', 'aborting')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    error      text
);
