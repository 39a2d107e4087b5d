"""psycopg 3 (Debian's python3-psycopg), unmodified, against one target (run by
tests/clients/psycopg3_test.sh; see driver_harness.py for the targets and KNOWN_FAILURES).

Usage: /usr/bin/python3 psycopg3_client.py TARGET HOST PORT USER PASSWORD DATABASE S0_PORT S1_PORT

S0_PORT and S1_PORT are the two shards' primaries (database app), reached directly to compute
where a tenant lives (PostgreSQL's own hash) and to see where rows landed.
"""
import random
import sys
import threading
import time

import psycopg
from psycopg import errors, sql

from driver_harness import Harness

# Scenario -> the proxy bug it hits ("TARGET:scenario" for one target only). Each entry must
# fail where listed; one that passes is reported, so fixed bugs get their entry removed.
KNOWN_FAILURES = {
    "listen_notify": "LISTEN is refused (0A000) in transaction pooling: the proxy cannot deliver notifications there",
    "with_hold_cursor": "DECLARE ... WITH HOLD is refused (0A000) with pool.mode: transaction: the cursor "
                        "would outlive its transaction on a server that goes back to the pool (README)",
}

TARGET, HOST, PORT, USER, PASSWORD, DATABASE = sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:7]
SHARD_PORTS = (int(sys.argv[7]), int(sys.argv[8]))
SHARD_RANGES = ((0, 511), (512, 1023))  # the demo's directory
SEED = random.randrange(1 << 30)
rng = random.Random(SEED)
print(f"# psycopg {psycopg.__version__} (libpq {psycopg.pq.version()}), target {TARGET} on port {PORT}, seed {SEED}")
h = Harness(TARGET, KNOWN_FAILURES)

TENANTS = list(dict.fromkeys([rng.randrange(1, 10_000) for _ in range(12)] +
                             [rng.randrange(1 << 33, 1 << 40) for _ in range(12)]))


def connect(autocommit=True, **kw):
    return psycopg.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=DATABASE,
                           connect_timeout=10, autocommit=autocommit, **kw)


def connect_shard(i):
    return psycopg.connect(host=HOST, port=SHARD_PORTS[i], user=USER, password=PASSWORD, dbname="app",
                           connect_timeout=10, autocommit=True)


def shard_of(tenants):
    """tenant -> index of the shard that must hold it, computed by PostgreSQL itself (SPEC 4)."""
    with connect_shard(0) as d:
        d.execute("CREATE TEMP TABLE placement_oracle (k bigint) PARTITION BY HASH (k)")
        rows = d.execute("SELECT k, r FROM unnest(%s::bigint[]) k, generate_series(0, 1023) r "
                         "WHERE satisfies_hash_partition('placement_oracle'::regclass, 1024, r, k)",
                         (list(tenants),)).fetchall()
    return {k: (0 if r <= SHARD_RANGES[0][1] else 1) for k, r in rows}


HOME = shard_of(TENANTS)
TENANTS.sort(key=lambda t: HOME[t] == 0)  # tenants off the home shard first


def count(where, params=()):
    """Counted on a separate connection: what another client sees."""
    with connect() as c:
        return c.execute(f"SELECT count(*) FROM pg3_items WHERE {where}", params).fetchone()[0]


def setup():
    with connect() as c:
        for t in ("pg3_items", "pg3_copy", "pg3_log"):
            c.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(t)))
        c.execute("CREATE TABLE pg3_items (tenant_id bigint, id int, name text NOT NULL, qty int, "
                  "PRIMARY KEY (tenant_id, id))")
        c.execute("CREATE TABLE pg3_copy (tenant_id bigint, id int, payload bytea, amount numeric, "
                  "PRIMARY KEY (tenant_id, id))")
        c.execute("CREATE TABLE pg3_log (id int PRIMARY KEY, note text, payload bytea)")
        h.check("the three tables exist", 3, c.execute(
            "SELECT count(*) FROM pg_tables WHERE tablename IN ('pg3_items', 'pg3_copy', 'pg3_log')").fetchone()[0])
        if h.sharded:
            # The proxy learns a new table's key type after its CREATE; wait for it here (the
            # asyncpg test checks what happens before).
            t = TENANTS[0]
            for table in ("pg3_items", "pg3_copy"):
                port = None
                for _ in range(100):
                    port = c.execute(f"SELECT inet_server_port(), count(*) FROM {table} WHERE tenant_id = %s",
                                     (t,)).fetchone()[0]
                    if port == SHARD_PORTS[1]:
                        break
                    time.sleep(0.1)
                h.check(f"the proxy routes {table} by tenant_id within 10 s of its CREATE", SHARD_PORTS[1], port)
        with c.cursor() as cur:
            for t in TENANTS:  # one tenant per batch (executemany_across_tenants mixes them)
                cur.executemany("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, %s, %s, %s)",
                                [(t, i, f"n-{t}-{i}", i) for i in range(1, 21)])
        h.check("20 rows per tenant", [20] * len(TENANTS),
                [c.execute("SELECT count(*) FROM pg3_items WHERE tenant_id = %s", (t,)).fetchone()[0]
                 for t in TENANTS])


def executemany_across_tenants():
    with connect() as c, c.cursor() as cur:
        cur.executemany("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, 8000, 'many', 0)",
                        [(t,) for t in TENANTS])
        h.check("executemany over every tenant: each tenant finds its row", [1] * len(TENANTS),
                [c.execute("SELECT count(*) FROM pg3_items WHERE tenant_id = %s AND id = 8000", (t,)).fetchone()[0]
                 for t in TENANTS])
        if h.sharded:
            for i in (0, 1):
                with connect_shard(i) as d:
                    held = sorted(r[0] for r in d.execute("SELECT tenant_id FROM pg3_items WHERE id = 8000"))
                h.check(f"shard s{i} holds the rows of exactly its tenants",
                        sorted(t for t in TENANTS if HOME[t] == i), held)
        # One batch is one transaction: a duplicate key in the middle leaves no row anywhere.
        rows = [(t,) for t in TENANTS]
        rows.insert(len(rows) // 2, (TENANTS[0],))
        try:
            cur.executemany("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, 8001, 'many', 0)", rows)
            h.check("a duplicate key in the middle fails the batch", "UniqueViolation", None)
        except psycopg.errors.UniqueViolation:
            h.check("a duplicate key in the middle fails the batch with 23505", True, True)
        h.check("the failed batch left no row on any shard", 0, count("id = 8001"))
    # Outside autocommit psycopg sends BEGIN in the batch's pipeline: commit() and rollback() end it.
    with connect(autocommit=False) as c, c.cursor() as cur:
        cur.executemany("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, 8002, 'tx', 0)",
                        [(t,) for t in TENANTS])
        h.check("the batch's rows are not visible before commit()", 0, count("id = 8002"))
        c.commit()
        h.check("committed: a row for each tenant", len(TENANTS), count("id = 8002"))
        cur.executemany("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, 8003, 'tx', 0)",
                        [(t,) for t in TENANTS])
        c.rollback()
        h.check("rolled back: no row", 0, count("id = 8003"))


def pipeline_errors():
    """100 rounds of three sync points: a clean write, a write followed by an error (the error
    undoes its sync point's implicit transaction and skips the rest), and a read."""
    with connect() as c:
        errors_seen = 0
        wrong = []
        for r in range(100):
            t = TENANTS[r % len(TENANTS)]
            with c.pipeline() as p:
                c.execute("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, %s, 'clean', 0)", (t, 1000 + r))
                p.sync()
                # psycopg may raise the error from a later execute() or from sync(); the
                # statements after it until the sync fail with PipelineAborted.
                raised = False
                try:
                    c.execute("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, %s, 'undone', 0)",
                              (t, 2000 + r))
                    c.execute("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, 1, 'duplicate', 0)", (t,))
                    c.execute("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, %s, 'skipped', 0)",
                              (t, 3000 + r))
                except errors.UniqueViolation:
                    raised = True
                except errors.PipelineAborted:  # a statement after the error, before the sync
                    pass
                try:
                    p.sync()
                except errors.UniqueViolation:
                    raised = True
                except errors.PipelineAborted:
                    pass
                errors_seen += raised
                cur = c.execute("SELECT count(*) FILTER (WHERE id = %s), count(*) FILTER (WHERE id IN (%s, %s)) "
                                "FROM pg3_items WHERE tenant_id = %s", (1000 + r, 2000 + r, 3000 + r, t))
                p.sync()
                got = cur.fetchone()
                if got != (1, 0):
                    wrong.append((r, got))
        h.check("each of the 100 error sync points raised UniqueViolation", 100, errors_seen)
        h.check("in every round the clean write is there and the failed sync point left nothing", [], wrong[:5])
        h.check("the connection is idle and usable after the rounds", (psycopg.pq.TransactionStatus.IDLE, 1),
                (c.info.transaction_status, c.execute("SELECT 1").fetchone()[0]))
    h.check("a separate connection sees the 100 clean rows and none of the others", (100, 0),
            (count("id BETWEEN 1000 AND 1999"), count("id BETWEEN 2000 AND 3999")))


def prepared_statements():
    with connect() as c:
        wrong = []
        for n in range(60):
            t, i = TENANTS[n % len(TENANTS)], n % 20 + 1
            row = c.execute("SELECT name, qty FROM pg3_items WHERE tenant_id = %s AND id = %s", (t, i),
                            prepare=True).fetchone()
            if row != (f"n-{t}-{i}", i):
                wrong.append(((t, i), row))
        h.check("60 executions of a prepare=True statement return their tenant's row", [], wrong[:3])
        c.execute("UPDATE pg3_items SET qty = qty + 1 WHERE tenant_id = %s AND id = 1", (TENANTS[0],), prepare=True)
        h.check("a prepared UPDATE took effect", 2, c.execute(
            "SELECT qty FROM pg3_items WHERE tenant_id = %s AND id = 1", (TENANTS[0],), prepare=True).fetchone()[0])


def prepared_after_alter():
    """PostgreSQL: a prepared SELECT * fails once the table's columns change (0A000); psycopg
    then rolls back, which deallocates its statements, and the re-prepared statement works."""
    t = TENANTS[1]
    with connect() as ddl:
        ddl.execute("DROP TABLE IF EXISTS pg3_alter")
        ddl.execute("CREATE TABLE pg3_alter (tenant_id bigint, id int, PRIMARY KEY (tenant_id, id))")
    with connect(autocommit=False) as c:
        c.execute("INSERT INTO pg3_alter (tenant_id, id) VALUES (%s, 1)", (t,))
        c.commit()
        q = "SELECT * FROM pg3_alter WHERE tenant_id = %s"
        h.check("prepared SELECT * before the ALTER", [(t, 1)], c.execute(q, (t,), prepare=True).fetchall())
        c.commit()
        ddl = connect()
        ddl.execute("ALTER TABLE pg3_alter ADD COLUMN extra text DEFAULT 'new'")
        try:
            got = c.execute(q, (t,), prepare=True).fetchall()
            h.check("the stale prepared statement fails with 0A000", "FeatureNotSupported", got)
        except errors.FeatureNotSupported as e:
            h.check_true("the stale prepared statement fails with 0A000 (cached plan must not change result type)",
                         "cached plan must not change result type" in str(e), str(e))
        c.rollback()
        h.check("after the rollback the re-prepared SELECT * sees the new column", [(t, 1, "new")],
                c.execute(q, (t,), prepare=True).fetchall())
        c.commit()
        ddl.execute("DROP TABLE pg3_alter")
        ddl.close()


def binary_copy():
    with connect() as c:
        rows = [(i, f"note {i}", bytes([i % 256, 0, 255])) for i in range(1, 2001)]
        with c.cursor() as cur:
            with cur.copy("COPY pg3_log (id, note, payload) FROM STDIN (FORMAT BINARY)") as cp:
                cp.set_types(["int4", "text", "bytea"])
                for row in rows:
                    cp.write_row(row)
            h.check("binary COPY FROM reports 2000 rows", 2000, cur.rowcount)
            h.check("the binary-copied rows are there", (2000, 2001000, b"\x07\x00\xff"), cur.execute(
                "SELECT count(*), sum(id), (SELECT payload FROM pg3_log WHERE id = 7) FROM pg3_log").fetchone())
            t = TENANTS[2]
            got = []
            with cur.copy("COPY (SELECT id, name, qty FROM pg3_items WHERE tenant_id = {} AND id <= 20 ORDER BY id) "
                          "TO STDOUT (FORMAT BINARY)".format(int(t))) as cp:
                cp.set_types(["int4", "text", "int4"])
                got = list(cp.rows())
            h.check("binary COPY TO of one tenant's rows", [(i, f"n-{t}-{i}", i) for i in range(1, 21)], got)
            # Text COPY into the tenant-keyed table, rows of every tenant mixed.
            with cur.copy("COPY pg3_copy (tenant_id, id, payload, amount) FROM STDIN") as cp:
                for t in TENANTS:
                    for i in range(1, 11):
                        cp.write_row((t, i, b"\x01\x02", f"{i}.5"))
            h.check(f"text COPY FROM into pg3_copy reports {10 * len(TENANTS)} rows", 10 * len(TENANTS), cur.rowcount)
    with connect() as c2:
        h.check("a separate connection finds 10 copied rows per tenant", [10] * len(TENANTS),
                [c2.execute("SELECT count(*) FROM pg3_copy WHERE tenant_id = %s", (t,)).fetchone()[0] for t in TENANTS])


def binary_copy_sharded_table():
    """Binary COPY FROM into the tenant-keyed table (PostgreSQL loads it like any other)."""
    with connect() as c, c.cursor() as cur:
        with cur.copy("COPY pg3_copy (tenant_id, id, payload, amount) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["int8", "int4", "bytea", "numeric"])
            for t in TENANTS:
                for i in range(100, 105):
                    cp.write_row((t, i, b"\x00", i))
        h.check(f"binary COPY FROM into pg3_copy reports {5 * len(TENANTS)} rows", 5 * len(TENANTS), cur.rowcount)
    with connect() as c2:
        h.check("a separate connection finds the 5 binary-copied rows of each tenant", [5] * len(TENANTS),
                [c2.execute("SELECT count(*) FROM pg3_copy WHERE tenant_id = %s AND id >= 100", (t,)).fetchone()[0]
                 for t in TENANTS])


def server_side_cursors():
    t = TENANTS[3]
    with connect(autocommit=False) as c:
        with c.cursor() as cur:
            cur.executemany("INSERT INTO pg3_items (tenant_id, id, name, qty) VALUES (%s, %s, 'cur', %s)",
                            [(t, i, i) for i in range(5000, 5600)])
        c.commit()
        with c.cursor(name="pg3_big") as cur:
            cur.itersize = 64
            cur.execute("SELECT id FROM pg3_items WHERE tenant_id = %s AND id BETWEEN 5000 AND 5999 ORDER BY id", (t,))
            first = cur.fetchmany(10)
            rest = [r[0] for r in cur]
            h.check("a named cursor returns all 600 rows (fetchmany, then iteration by 64)",
                    list(range(5000, 5600)), [r[0] for r in first] + rest)
        c.commit()
        with c.cursor(name="pg3_scroll", scrollable=True) as cur:
            cur.execute("SELECT id FROM pg3_items WHERE tenant_id = %s AND id BETWEEN 5000 AND 5999 ORDER BY id", (t,))
            cur.fetchmany(100)
            cur.scroll(-10)
            h.check("a scrollable cursor moves back 10 rows", (5090,), cur.fetchone())
            cur.scroll(500, mode="absolute")
            h.check("and to an absolute position", (5500,), cur.fetchone())
        c.commit()


def with_hold_cursor():
    t = TENANTS[3]
    with connect(autocommit=False) as c:
        with c.cursor(name="pg3_hold", withhold=True) as cur:
            cur.execute("SELECT id FROM pg3_items WHERE tenant_id = %s AND id BETWEEN 5000 AND 5999 ORDER BY id", (t,))
            c.commit()
            h.check("a WITH HOLD cursor survives the commit", 600, len(cur.fetchall()))
        c.commit()


def deallocate_after_rollback():
    """psycopg sends DEALLOCATE ALL after a rollback; it is this client's business only: other
    clients running the same prepared statements at the same time must not notice."""
    stop = threading.Event()
    problems = []
    done = [0]

    def other_client(n):
        try:
            with connect() as c:
                while not stop.is_set():
                    t = TENANTS[n % len(TENANTS)]
                    row = c.execute("SELECT name FROM pg3_items WHERE tenant_id = %s AND id = %s", (t, 2),
                                    prepare=True).fetchone()
                    if row != (f"n-{t}-2",):
                        problems.append(f"client {n}: {row!r}")
                    done[0] += 1
                    n += 1
        except Exception as e:  # noqa: BLE001
            problems.append(f"client {n}: {h.describe(e)}")

    threads = [threading.Thread(target=other_client, args=(k,)) for k in range(3)]
    for th in threads:
        th.start()
    try:
        with connect(autocommit=False) as c:
            own = None
            try:
                for r in range(30):
                    t = TENANTS[r % len(TENANTS)]
                    c.execute("SELECT name FROM pg3_items WHERE tenant_id = %s AND id = %s", (t, 2), prepare=True)
                    c.execute("UPDATE pg3_items SET qty = qty WHERE tenant_id = %s AND id = 2", (t,), prepare=True)
                    c.rollback()  # DEALLOCATE ALL follows
            except psycopg.Error as e:
                own = f"round {r}: {h.describe(e)}"
            h.check("the rolling-back client ran 30 rounds without an error", None, own)
    finally:
        stop.set()
        for th in threads:
            th.join(15)
    h.check("three other clients ran their prepared statement without an error meanwhile", [], problems[:3])
    h.check_true("the other clients ran at least 30 queries", done[0] >= 30, f"{done[0]} queries")


def set_config_is_session_local():
    """set_config(..., false) changes this session only (pg_dump does it with search_path)."""
    with connect() as a:
        h.check("set_config returns the new value", ("",),
                a.execute("SELECT set_config('search_path', '', false)").fetchone())
        h.check("the session keeps its search_path", ("",), a.execute("SHOW search_path").fetchone())
        others = []
        for _ in range(8):
            with connect() as b:
                others.append(b.execute("SHOW search_path").fetchone()[0])
        h.check("8 other sessions keep the default search_path", ['"$user", public'] * 8, others)
        h.check("the session still has its own search_path", ("",), a.execute("SHOW search_path").fetchone())


def client_encoding():
    with connect(client_encoding="utf-8") as c:
        h.check("ParameterStatus client_encoding for client_encoding=utf-8 is UTF8", b"UTF8",
                c.pgconn.parameter_status(b"client_encoding"))
        h.check("SHOW client_encoding says UTF8", ("UTF8",), c.execute("SHOW client_encoding").fetchone())
        c.execute("SET client_encoding TO 'latin1'")
        h.check("after SET client_encoding TO 'latin1' the ParameterStatus is LATIN1", b"LATIN1",
                c.pgconn.parameter_status(b"client_encoding"))
        h.check("and text round-trips in LATIN1", ("d\u00e9j\u00e0",), c.execute("SELECT 'd\u00e9j\u00e0'::text").fetchone())


def listen_notify():
    got = []
    with connect() as listener, connect() as notifier:
        listener.add_notify_handler(lambda n: got.append((n.channel, n.payload)))
        listener.execute("LISTEN pg3_channel")
        notifier.execute("NOTIFY pg3_channel, 'hello'")
        notifier.execute("SELECT pg_notify('pg3_channel', 'world')")
        deadline = time.monotonic() + 5
        while len(got) < 2 and time.monotonic() < deadline:
            listener.execute("SELECT 1")
            time.sleep(0.05)
        h.check("the listener received both notifications", [("pg3_channel", "hello"), ("pg3_channel", "world")], got)


def insert_without_column_list():
    t = TENANTS[4]
    with connect() as c:
        c.execute("INSERT INTO pg3_items VALUES (%s, 7000, 'no column list', 1)", (t,))
        h.check("the row inserted without a column list is found by its tenant", 1, count(
            "tenant_id = %s AND id = 7000", (t,)))


h.run("setup", setup)
h.run("executemany_across_tenants", executemany_across_tenants)
h.run("pipeline_errors", pipeline_errors, timeout_s=10)
h.run("prepared_statements", prepared_statements)
h.run("prepared_after_alter", prepared_after_alter)
h.run("binary_copy", binary_copy)
h.run("binary_copy_sharded_table", binary_copy_sharded_table)
h.run("server_side_cursors", server_side_cursors)
h.run("with_hold_cursor", with_hold_cursor)
h.run("deallocate_after_rollback", deallocate_after_rollback, timeout_s=30)
h.run("client_encoding", client_encoding)
h.run("listen_notify", listen_notify)
h.run("insert_without_column_list", insert_without_column_list)
# Last: through the proxy its setting leaks to other clients' server connections.
h.run("set_config_is_session_local", set_config_is_session_local)
h.finish()
