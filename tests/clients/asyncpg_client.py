"""asyncpg (Debian's python3-asyncpg), unmodified, against one target (run by
tests/clients/asyncpg_test.sh; see driver_harness.py for the targets and KNOWN_FAILURES).

Usage: /usr/bin/python3 asyncpg_client.py TARGET HOST PORT USER PASSWORD DATABASE S0_PORT S1_PORT

S0_PORT and S1_PORT are the two shards' primaries (database app), reached directly to see where
rows landed in the two-shard case.
"""
import asyncio
import io
import random
import sys

import asyncpg

from driver_harness import Harness

# Scenario -> the proxy bug it hits ("TARGET:scenario" for one target only). Each entry must
# fail where listed; one that passes is reported, so fixed bugs get their entry removed.
KNOWN_FAILURES = {}

# Logical shards 0-511 live on s0, 512-1023 on s1 (the demo's directory).
SHARD_RANGES = ((0, 511), (512, 1023))

TARGET, HOST, PORT, USER, PASSWORD, DATABASE = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:7]
SHARD_PORTS = (int(sys.argv[7]), int(sys.argv[8]))
SEED = random.randrange(1 << 30)
rng = random.Random(SEED)
print(f"# asyncpg {asyncpg.__version__}, target {TARGET} on port {PORT}, seed {SEED}")
h = Harness(TARGET, KNOWN_FAILURES)

# 40 tenants: small keys and keys past the int4 range (bigint hashing differs there).
TENANTS = [rng.randrange(1, 10_000) for _ in range(20)] + [rng.randrange(1 << 33, 1 << 40) for _ in range(20)]
TENANTS = list(dict.fromkeys(TENANTS))


def connect(**kw):
    return asyncpg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DATABASE,
                           timeout=10, **kw)


async def count_rows(where, *args):
    """Counted on a separate connection: what another client sees."""
    c = await connect()
    try:
        # fetch, not fetchval: fetchval asks for one row (Execute with a row limit), which a read
        # on several shards refuses (README, known limits).
        return (await c.fetch(f"SELECT count(*) FROM apg_items WHERE {where}", *args))[0][0]
    finally:
        await c.close()


async def shard_of(tenants):
    """tenant -> index of the shard that must hold it, computed by PostgreSQL itself (SPEC 4)."""
    d = await asyncpg.connect(host=HOST, port=SHARD_PORTS[0], user=USER, password=PASSWORD, database="app",
                              timeout=10)
    try:
        await d.execute("CREATE TEMP TABLE placement_oracle (k bigint) PARTITION BY HASH (k)")
        rows = await d.fetch("SELECT k, r FROM unnest($1::bigint[]) k, generate_series(0, 1023) r "
                             "WHERE satisfies_hash_partition('placement_oracle'::regclass, 1024, r, k)", tenants)
        return {k: (0 if r <= SHARD_RANGES[0][1] else 1) for k, r in rows}
    finally:
        await d.close()


async def wait_until_routed(c, table):
    """In the two-shard case: until the proxy routes `table` by tenant (it learns a new table's key
    type after the CREATE; insert_right_after_create checks what happens before)."""
    home = await shard_of(TENANTS)
    t = next(t for t in TENANTS if home[t] == 1)
    for _ in range(100):
        port = await c.fetchval(f"SELECT inet_server_port(), count(*) FROM {table} WHERE tenant_id = $1", t)
        if port == SHARD_PORTS[1]:
            return True
        await asyncio.sleep(0.1)
    return False


async def setup():
    c = await connect()
    try:
        for t in ("apg_items", "apg_copy", "apg_log"):
            await c.execute(f"DROP TABLE IF EXISTS {t}")
        await c.execute("CREATE TABLE apg_items (tenant_id bigint, id int, name text NOT NULL, qty int, "
                        "PRIMARY KEY (tenant_id, id))")
        await c.execute("CREATE TABLE apg_copy (tenant_id bigint, id int, payload text, "
                        "PRIMARY KEY (tenant_id, id))")
        await c.execute("CREATE TABLE apg_log (id int PRIMARY KEY, note text, at timestamptz)")
        h.check("the three tables exist", 3, await c.fetchval(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('apg_items', 'apg_copy', 'apg_log')"))
        if h.sharded:
            for t in ("apg_items", "apg_copy"):
                h.check(f"the proxy routes {t} by tenant_id within 10 s of its CREATE", True,
                        await wait_until_routed(c, t))
    finally:
        await c.close()


async def insert_right_after_create():
    """A sharded table's rows inserted right after its CREATE must land on their tenants' shards."""
    c = await connect()
    try:
        await c.execute("DROP TABLE IF EXISTS apg_fresh")
        await c.execute("CREATE TABLE apg_fresh (tenant_id bigint PRIMARY KEY, name text)")
        for t in TENANTS:
            await c.execute("INSERT INTO apg_fresh (tenant_id, name) VALUES ($1, 'fresh')", t)
        found = [t for t in TENANTS if await c.fetchval("SELECT count(*) FROM apg_fresh WHERE tenant_id = $1", t) == 1]
        h.check("a tenant-keyed read finds each tenant's row inserted right after CREATE TABLE", TENANTS, found)
        if h.sharded:
            home = await shard_of(TENANTS)
            for i, port in enumerate(SHARD_PORTS):
                d = await asyncpg.connect(host=HOST, port=port, user=USER, password=PASSWORD, database="app",
                                          timeout=10)
                held = sorted(r[0] for r in await d.fetch("SELECT tenant_id FROM apg_fresh"))
                await d.close()
                h.check(f"shard s{i} holds exactly its tenants' rows", sorted(t for t in TENANTS if home[t] == i), held)
        await c.execute("DROP TABLE apg_fresh")
    finally:
        await c.close()


async def executemany():
    c = await connect()
    try:
        # One tenant per call: every statement of the batch is keyed to one tenant.
        for t in TENANTS:
            await c.executemany("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, $2, $3, $4)",
                                [(t, i, f"item-{t}-{i}", i * 3) for i in range(1, 11)])
        total = 0
        for t in TENANTS:
            total += await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t)
        h.check("executemany stored 10 rows for each tenant", 10 * len(TENANTS), total)
        if h.sharded:
            home = await shard_of(TENANTS)
            for i, port in enumerate(SHARD_PORTS):
                d = await asyncpg.connect(host=HOST, port=port, user=USER, password=PASSWORD,
                                          database="app", timeout=10)
                held = sorted(r[0] for r in await d.fetch("SELECT DISTINCT tenant_id FROM apg_items"))
                await d.close()
                h.check(f"shard s{i} holds the rows of exactly its tenants",
                        sorted(t for t in TENANTS if home[t] == i), held)
    finally:
        await c.close()


async def executemany_across_tenants():
    c = await connect()
    try:
        rows = [(t, 100, f"x-{t}", 1) for t in TENANTS]
        await c.executemany("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, $2, $3, $4)", rows)
        h.check("one executemany over every tenant stored a row for each", len(TENANTS),
                await count_rows("id = 100"))
        if h.sharded:
            home = await shard_of(TENANTS)
            for i, port in enumerate(SHARD_PORTS):
                d = await asyncpg.connect(host=HOST, port=port, user=USER, password=PASSWORD, database="app",
                                          timeout=10)
                held = sorted(r[0] for r in await d.fetch("SELECT tenant_id FROM apg_items WHERE id = 100"))
                await d.close()
                h.check(f"shard s{i} holds the rows of exactly its tenants", sorted(t for t in TENANTS if home[t] == i),
                        held)
        # executemany is atomic: a duplicate key in the last row undoes the whole batch.
        rows = [(t, 101, f"y-{t}", 1) for t in TENANTS] + [(TENANTS[0], 101, "dup", 1)]
        try:
            await c.executemany("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, $2, $3, $4)", rows)
            h.check("a duplicate key fails the batch", "UniqueViolationError", None)
        except asyncpg.UniqueViolationError:
            h.check("a duplicate key fails the batch with 23505", True, True)
        h.check("the failed batch left no row", 0, await count_rows("id = 101"))
        # Inside a transaction the batch joins it: ROLLBACK takes it back on every shard.
        async with c.transaction():
            await c.executemany("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 102, $2, 1)",
                                [(t, f"z-{t}") for t in TENANTS])
            h.check("inside the transaction the batch's rows are not visible outside", 0,
                    await count_rows("id = 102"))
        h.check("committed with the transaction: a row for each tenant", len(TENANTS), await count_rows("id = 102"))
        tr = c.transaction()
        await tr.start()
        await c.executemany("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 103, $2, 1)",
                            [(t, f"w-{t}") for t in TENANTS])
        await tr.rollback()
        h.check("rolled back with the transaction: no row", 0, await count_rows("id = 103"))
    finally:
        await c.close()


async def pool_concurrency():
    pool = await asyncpg.create_pool(host=HOST, port=PORT, user=USER, password=PASSWORD, database=DATABASE,
                                     min_size=5, max_size=5, statement_cache_size=100, timeout=10)
    try:
        # The first 100 on the tenants of s1 (TENANTS starts with them), so that each pooled
        # connection's first use of each statement is for a tenant off the home shard.
        s1 = TENANTS[:10]
        queries = [(rng.choice(s1 if n < 100 else TENANTS), rng.randrange(1, 11)) for n in range(500)]

        async def one(t, i):
            async with pool.acquire() as c:
                if i % 2:
                    return await c.fetchrow("SELECT name, qty FROM apg_items WHERE tenant_id = $1 AND id = $2", t, i)
                return await c.fetchrow("SELECT name, qty FROM apg_items WHERE id = $2 AND tenant_id = $1", t, i)

        results = await asyncio.gather(*(one(t, i) for t, i in queries), return_exceptions=True)
        errors = [h.describe(r) for r in results if isinstance(r, Exception)]
        h.check("500 concurrent queries on a pool of 5 raised no error", [], errors[:3])
        wrong = [(q, r) for q, r in zip(queries, results)
                 if not isinstance(r, Exception) and (r is None or tuple(r) != (f"item-{q[0]}-{q[1]}", q[1] * 3))]
        h.check("each of the 500 queries returned its own tenant's row", [], wrong[:3])
        h.check("the pool holds 5 connections", 5, pool.get_size())
    finally:
        await pool.close()


async def transaction_rollback():
    t = TENANTS[1]
    c = await connect()
    try:
        class Undo(Exception):
            pass
        try:
            async with c.transaction():
                await c.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 200, 'rolled back', 0)", t)
                h.check("inside the transaction the row is visible", 1,
                        await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1 AND id = 200", t))
                h.check("a separate connection does not see the uncommitted row", 0,
                        await count_rows("tenant_id = $1 AND id = 200", t))
                raise Undo()
        except Undo:
            pass
        h.check("after the rollback a separate connection sees no row", 0,
                await count_rows("tenant_id = $1 AND id = 200", t))
        async with c.transaction():
            await c.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 201, 'committed', 0)", t)
            await c.execute("UPDATE apg_items SET qty = qty + 1 WHERE tenant_id = $1 AND id = 1", t)
        h.check("after the commit a separate connection sees both writes", 2,
                await count_rows("tenant_id = $1 AND ((id = 201) OR (id = 1 AND qty = 4))", t))
        # An error inside the transaction rolls it back too.
        try:
            async with c.transaction():
                await c.execute("UPDATE apg_items SET qty = 1000 WHERE tenant_id = $1 AND id = 2", t)
                await c.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 1, 'dup', 0)", t)
        except asyncpg.UniqueViolationError:
            pass
        h.check("a failed transaction left the update undone", 6, await c.fetchval(
            "SELECT qty FROM apg_items WHERE tenant_id = $1 AND id = 2", t))
    finally:
        await c.close()


async def savepoints():
    t = TENANTS[2]
    c = await connect()
    try:
        async with c.transaction():
            await c.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 300, 'outer', 0)", t)
            try:
                async with c.transaction():  # a savepoint
                    await c.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 301, 'inner', 0)", t)
                    await c.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 300, 'dup', 0)", t)
            except asyncpg.UniqueViolationError:
                pass
            async with c.transaction():
                await c.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 302, 'inner kept', 0)", t)
            h.check("the separate connection sees nothing before the commit", 0,
                    await count_rows("tenant_id = $1 AND id >= 300", t))
        c2 = await connect()
        rows = await c2.fetch("SELECT id, name FROM apg_items WHERE tenant_id = $1 AND id >= 300 ORDER BY id", t)
        await c2.close()
        h.check("the rolled-back savepoint's row is gone, the others committed",
                [(300, "outer"), (302, "inner kept")], [tuple(r) for r in rows])
    finally:
        await c.close()


async def isolation_levels():
    t = TENANTS[3]
    c = await connect()
    other = await connect()
    try:
        for level, shown in (("read_committed", "read committed"), ("repeatable_read", "repeatable read"),
                             ("serializable", "serializable")):
            async with c.transaction(isolation=level):
                await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t)
                h.check(f"{level}: the server reports transaction_isolation {shown!r}", shown,
                        await c.fetchval("SELECT current_setting('transaction_isolation')"))
        # Repeatable read: a row another client commits meanwhile stays invisible.
        async with c.transaction(isolation="repeatable_read"):
            before = await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t)
            await other.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 400, 'late', 0)", t)
            h.check("repeatable read: a concurrent commit stays invisible", before,
                    await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t))
        h.check("after the transaction the concurrent row is visible", before + 1,
                await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t))
        async with c.transaction(isolation="read_committed"):
            await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t)
            await other.execute("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, 401, 'late', 0)", t)
            h.check("read committed: a concurrent commit is visible at once", before + 2,
                    await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t))
        try:
            async with c.transaction(readonly=True):
                await c.fetchval("SELECT count(*) FROM apg_items WHERE tenant_id = $1", t)
                h.check("read only: the server reports transaction_read_only on", "on",
                        await c.fetchval("SELECT current_setting('transaction_read_only')"))
                await c.execute("UPDATE apg_items SET qty = 0 WHERE tenant_id = $1", t)
            h.check("read only: an UPDATE fails", "ReadOnlySQLTransactionError", None)
        except asyncpg.ReadOnlySQLTransactionError:
            h.check("read only: an UPDATE fails with 25006", True, True)
    finally:
        await c.close()
        await other.close()


async def cursors():
    t = TENANTS[4]
    c = await connect()
    try:
        await c.executemany("INSERT INTO apg_items (tenant_id, id, name, qty) VALUES ($1, $2, $3, $4)",
                            [(t, i, f"cur-{i}", i) for i in range(1000, 1250)])
        async with c.transaction():
            ids = [r["id"] async for r in c.cursor(
                "SELECT id FROM apg_items WHERE tenant_id = $1 AND id >= 1000 ORDER BY id", t, prefetch=7)]
            h.check("an iterated cursor (prefetch 7) returned all 250 rows in order", list(range(1000, 1250)), ids)
            cur = await c.cursor("SELECT id, name FROM apg_items WHERE tenant_id = $1 AND id >= 1000 ORDER BY id", t)
            first = await cur.fetch(5)
            h.check("cursor.fetch(5)", [(i, f"cur-{i}") for i in range(1000, 1005)], [tuple(r) for r in first])
            h.check("cursor.forward(100) skipped 100 rows", 100, await cur.forward(100))
            row = await cur.fetchrow()
            h.check("cursor.fetchrow() after the skip", (1105, "cur-1105"), tuple(row))
            rest = await cur.fetch(1000)
            h.check("cursor.fetch() of the rest", list(range(1106, 1250)), [r["id"] for r in rest])
    finally:
        await c.close()


async def statement_cache_after_alter():
    """asyncpg re-prepares a cached statement whose result type changed (it catches PostgreSQL's
    0A000 'cached plan must not change result type' outside a transaction and retries)."""
    t = TENANTS[6]
    c = await connect()
    ddl = await connect()
    try:
        await ddl.execute("DROP TABLE IF EXISTS apg_alter")
        await ddl.execute("CREATE TABLE apg_alter (tenant_id bigint, id int, PRIMARY KEY (tenant_id, id))")
        if h.sharded:
            h.check("the proxy routes apg_alter by tenant_id within 10 s of its CREATE", True,
                    await wait_until_routed(ddl, "apg_alter"))
        await ddl.execute("INSERT INTO apg_alter (tenant_id, id) VALUES ($1, 1)", t)
        for _ in range(2):
            rows = await c.fetch("SELECT * FROM apg_alter WHERE tenant_id = $1", t)
        h.check("the cached SELECT * before the ALTER", [(t, 1)], [tuple(r) for r in rows])
        await ddl.execute("ALTER TABLE apg_alter ADD COLUMN extra text DEFAULT 'new'")
        rows = await c.fetch("SELECT * FROM apg_alter WHERE tenant_id = $1", t)
        h.check("after the ALTER the same query returns the new column", [(t, 1, "new")], [tuple(r) for r in rows])
        await ddl.execute("DROP TABLE apg_alter")
    finally:
        await c.close()
        await ddl.close()


async def copy():
    c = await connect()
    try:
        records = [(i, f"note {i}\twith tab", None) for i in range(1, 3001)]
        status = await c.copy_records_to_table("apg_log", records=records, columns=["id", "note", "at"])
        h.check("copy_records_to_table (binary COPY) reports 3000 rows", "COPY 3000", status)
        h.check("the 3000 binary-copied rows are there", (3000, 4501500),
                tuple(await c.fetchrow("SELECT count(*), sum(id) FROM apg_log")))
        out = io.BytesIO()
        status = await c.copy_from_table("apg_log", columns=["id", "note"], output=out, format="csv")
        h.check("copy_from_table reports 3000 rows", "COPY 3000", status)
        h.check("copy_from_table wrote every row", 3000, out.getvalue().count(b"\n"))

        # CSV into the tenant-keyed table: rows of every tenant in one COPY.
        lines = "".join(f"{t},{i},\"p,{t},{i}\"\n" for t in TENANTS for i in range(1, 26))
        status = await c.copy_to_table("apg_copy", source=io.BytesIO(lines.encode()), format="csv")
        h.check(f"copy_to_table (CSV) reports {25 * len(TENANTS)} rows", f"COPY {25 * len(TENANTS)}", status)
        c2 = await connect()
        counts = [await c2.fetchval("SELECT count(*) FROM apg_copy WHERE tenant_id = $1", t) for t in TENANTS]
        await c2.close()
        h.check("a separate connection finds 25 copied rows per tenant", [25] * len(TENANTS), counts)
        t = TENANTS[5]
        out = io.BytesIO()
        status = await c.copy_from_query("SELECT id, payload FROM apg_copy WHERE tenant_id = $1 ORDER BY id", t,
                                         output=out, format="csv")
        h.check("copy_from_query of one tenant reports 25 rows", "COPY 25", status)
        h.check("copy_from_query returned that tenant's rows", "".join(f"{i},\"p,{t},{i}\"\n" for i in range(1, 26)),
                out.getvalue().decode())
    finally:
        await c.close()


async def main():
    # The tenants on s1 (not the home shard) first: the scenarios' main tenants are then ones a
    # statement misrouted to the home shard would not find.
    home = await shard_of(TENANTS)
    TENANTS.sort(key=lambda t: home[t] == 0)
    await h.arun("setup", setup)
    await h.arun("insert_right_after_create", insert_right_after_create)
    await h.arun("executemany", executemany)
    await h.arun("executemany_across_tenants", executemany_across_tenants)
    await h.arun("pool_concurrency", pool_concurrency, timeout_s=30)
    await h.arun("transaction_rollback", transaction_rollback)
    await h.arun("savepoints", savepoints)
    await h.arun("isolation_levels", isolation_levels)
    await h.arun("cursors", cursors)
    await h.arun("statement_cache_after_alter", statement_cache_after_alter)
    await h.arun("copy", copy)


asyncio.run(main())
h.finish()
