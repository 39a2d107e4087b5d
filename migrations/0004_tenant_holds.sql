-- RESHARD ISOLATE TENANT (SPEC.md section 8): a tenant whose new transactions every proxy
-- holds while the isolate's cutover moves it. `shard` is where its rows live until the flip
-- (the pin the flip writes then names the target). Part of the directory like holds and pins,
-- so a change advances the epoch and every proxy sharing the catalog follows.
--
-- Every statement is safe to run again (see 0001).

CREATE TABLE IF NOT EXISTS shardline.tenant_holds (
    tenant text PRIMARY KEY,
    shard  text NOT NULL CHECK (shard <> ''),
    job    bigint NOT NULL
);
DROP TRIGGER IF EXISTS tenant_holds_change ON shardline.tenant_holds;
CREATE TRIGGER tenant_holds_change AFTER INSERT OR UPDATE OR DELETE ON shardline.tenant_holds
    FOR EACH ROW EXECUTE FUNCTION shardline.bump_directory_epoch();
