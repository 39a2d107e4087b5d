-- Online reshard (SPEC.md section 8): the progress columns of a job, the holds a cutover puts
-- on the logical shard it moves, and tenant pins. Holds and pins are part of the directory a
-- proxy routes with, so changing them advances the directory epoch like a directory row does
-- (same trigger function as 0001), and every proxy sharing the catalog follows.
--
-- Every statement is safe to run again (see 0001).

ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'move'
    CHECK (kind IN ('move', 'isolate'));
ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS tenant text;          -- isolate only
ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS rows_copied bigint NOT NULL DEFAULT 0;
ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS rows_total bigint NOT NULL DEFAULT 0;
ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS lag_bytes bigint NOT NULL DEFAULT 0;
ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS finished_at timestamptz;
-- Cutover attempts abandoned because in-flight transactions did not drain in time.
ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS cutover_attempts int NOT NULL DEFAULT 0;
-- RESHARD ABORT asks the runner (possibly in another proxy) to stop before the flip.
ALTER TABLE shardline.reshard_jobs ADD COLUMN IF NOT EXISTS abort_requested bool NOT NULL DEFAULT false;

-- A logical shard whose new transactions every proxy holds (the cutover of a job).
CREATE TABLE IF NOT EXISTS shardline.directory_holds (
    logical int PRIMARY KEY CHECK (logical >= 0),
    job     bigint NOT NULL
);
DROP TRIGGER IF EXISTS directory_holds_change ON shardline.directory_holds;
CREATE TRIGGER directory_holds_change AFTER INSERT OR UPDATE OR DELETE ON shardline.directory_holds
    FOR EACH ROW EXECUTE FUNCTION shardline.bump_directory_epoch();

-- A tenant (the sharding key's value as text, PostgreSQL's output form) that lives on `shard`
-- whatever its hash says (RESHARD ISOLATE TENANT).
CREATE TABLE IF NOT EXISTS shardline.pins (
    tenant text PRIMARY KEY,
    shard  text NOT NULL CHECK (shard <> '')
);
DROP TRIGGER IF EXISTS pins_change ON shardline.pins;
CREATE TRIGGER pins_change AFTER INSERT OR UPDATE OR DELETE ON shardline.pins
    FOR EACH ROW EXECUTE FUNCTION shardline.bump_directory_epoch();

-- The directory epoch each proxy routes with, written by its directory watcher at every check:
-- a cutover waits (bounded) until every live proxy holds the logical shard before it fences
-- the source, and cleanup waits until every live proxy routes by the flip before it deletes.
CREATE TABLE IF NOT EXISTS shardline.proxy_epochs (
    proxy   text PRIMARY KEY,
    epoch   bigint NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now()
);
