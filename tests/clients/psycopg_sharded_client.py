"""psycopg2, unmodified, doing tenant CRUD through a proxy that shards accounts and notes by
tenant_id over two shards (run by tests/clients/psycopg_sharded_test.sh).

Usage: /usr/bin/python3 psycopg_sharded_client.py HOST PORT USER PASSWORD DATABASE DIRECTORY S0_PORT S1_PORT

DIRECTORY is the proxy's directory as `first-last=shard,...` (from SHOW DIRECTORY); S0_PORT and
S1_PORT are the primaries of shards s0 and s1, which the client also reaches directly (bypassing
the proxy) to see where each tenant's rows really are. Where a tenant must live is computed by
PostgreSQL itself (SPEC section 4: the hash partition remainder for MODULUS 1024, checked with
satisfies_hash_partition), then looked up in DIRECTORY.

Prints `ok - ...` / `FAIL - ...` per check and ends with `result: N passed, M failed`.
"""
import decimal
import sys
import time

import psycopg2
import psycopg2.extras

HOST, PORT, USER, PASSWORD, DATABASE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
DIRECTORY = [(int(r.split("=")[0].split("-")[0]), int(r.split("=")[0].split("-")[1]), r.split("=")[1])
             for r in sys.argv[6].split(",")]
SHARD_PORTS = {"s0": int(sys.argv[7]), "s1": int(sys.argv[8])}
SHARDS = ("s0", "s1")
LOGICAL_SHARDS = 1024
D = decimal.Decimal

# 200 tenants: 100 small keys and 100 past the int4 range (bigint hashing differs there).
TENANTS = [i for i in range(1, 101)] + [10_000_000_000 + i * 7_919_777 for i in range(100)]

passed = 0
failed = 0
started = time.monotonic()

# What the client wrote and committed: tenant -> {id: (name, balance)} and tenant -> {id: body}.
accounts = {t: {} for t in TENANTS}
notes = {t: {} for t in TENANTS}
home = {}  # tenant -> shard name where the proxy must put it


def check(name, expected, actual):
    global passed, failed
    if expected == actual:
        passed += 1
        print(f"ok   - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}\n       expected: {expected!r}\n       actual:   {actual!r}")


def connect(autocommit=True):
    conn = psycopg2.connect(host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=DATABASE,
                            application_name="psycopg-sharded-test", connect_timeout=10)
    conn.autocommit = autocommit
    return conn


def connect_direct(shard):
    conn = psycopg2.connect(host=HOST, port=SHARD_PORTS[shard], user=USER, password=PASSWORD,
                            dbname=DATABASE, connect_timeout=10)
    conn.autocommit = True
    return conn


def step(fn):
    """Runs one group of checks; an unexpected exception is a failure, not a crash."""
    global failed
    if time.monotonic() - started > 50:
        failed += 1
        print(f"FAIL - {fn.__name__} skipped: the 50 s time budget is spent")
        return
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any driver error is a test failure
        failed += 1
        state = f" [SQLSTATE {e.pgcode}]" if isinstance(e, psycopg2.Error) and e.pgcode else ""
        print(f"FAIL - {fn.__name__} raised {type(e).__name__}{state}: {e}".rstrip())


def first(items, n=5):
    """The first n of a list of problems, so a failure message stays readable."""
    return items[:n] + ([f"... {len(items) - n} more"] if len(items) > n else [])


def on(shard, n=1):
    """The first n tenants that live on shard."""
    return [t for t in TENANTS if home[t] == shard][:n]


def account_rows(cur, tenant):
    cur.execute("SELECT id, name, balance FROM accounts WHERE tenant_id = %s ORDER BY id", (tenant,))
    return {r[0]: (r[1], r[2]) for r in cur.fetchall()}


def note_rows(cur, tenant):
    cur.execute("SELECT id, body FROM notes WHERE tenant_id = %s ORDER BY id", (tenant,))
    return {r[0]: r[1] for r in cur.fetchall()}


def setup():
    conn = connect()
    cur = conn.cursor()
    for table in ("notes", "accounts", "plans"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")
    cur.execute("""CREATE TABLE accounts (tenant_id bigint, id bigint, name text, balance numeric,
                   PRIMARY KEY (tenant_id, id))""")
    cur.execute("CREATE TABLE notes (tenant_id bigint, id bigint, body text)")
    cur.execute("CREATE TABLE plans (id int PRIMARY KEY, name text)")
    conn.close()
    for shard in SHARDS:
        d = connect_direct(shard)
        c = d.cursor()
        c.execute("""SELECT string_agg(c.relname || ':' || (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ',' ORDER BY a.attnum)
                                                        FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), ' ' ORDER BY c.relname)
                     FROM pg_class c WHERE c.relname IN ('accounts', 'notes', 'plans') AND c.relkind = 'r'""")
        check(f"DDL through the proxy created the three tables on {shard}",
              "accounts:tenant_id bigint,id bigint,name text,balance numeric "
              "notes:tenant_id bigint,id bigint,body text plans:id integer,name text", c.fetchone()[0])
        c.execute("SELECT count(*) FROM pg_indexes WHERE indexname IN ('accounts_pkey', 'plans_pkey')")
        check(f"the primary keys exist on {shard}", 2, c.fetchone()[0])
        d.close()

    # Where each tenant belongs, according to PostgreSQL: the remainder of hashint8extended
    # with the partition seed (hash_combine64(0, h) adds 0x49a0f4dd15e5a8e3, whose low 10 bits
    # are 227), confirmed by satisfies_hash_partition on a hash-partitioned temp table.
    d = connect_direct("s0")
    c = d.cursor()
    c.execute("CREATE TEMP TABLE tenant_oracle (tenant_id bigint) PARTITION BY HASH (tenant_id)")
    c.execute("""SELECT t, r, satisfies_hash_partition('tenant_oracle'::regclass, %s, r, t)
                   FROM (SELECT t, (((hashint8extended(t, 8816678312871386365) & 1023) + 227) & 1023)::int AS r
                           FROM unnest(%s::bigint[]) t) x""", (LOGICAL_SHARDS, TENANTS))
    rows = c.fetchall()
    d.close()
    check("satisfies_hash_partition agrees with the computed remainder for all 200 tenants",
          [], first([t for t, _, ok in rows if not ok]))
    for t, r, _ in rows:
        home[t] = next(shard for lo, hi, shard in DIRECTORY if lo <= r <= hi)
    check("the 200 tenants fall on both shards", {"s0", "s1"}, set(home.values()))
    print(f"# tenants per shard: s0 {sum(1 for s in home.values() if s == 's0')}, "
          f"s1 {sum(1 for s in home.values() if s == 's1')}")


def crud():
    conn = connect()
    cur = conn.cursor()
    bad = []
    for t in TENANTS:
        for i in (1, 2, 3):
            row = (t, i, f"acct {t}/{i} O'Brien \u00e9\u4e2d", D(f"{i * 10}.25"))
            cur.execute("INSERT INTO accounts (tenant_id, id, name, balance) VALUES (%s, %s, %s, %s)", row)
            if cur.rowcount != 1:
                bad.append(f"tenant {t} id {i}: rowcount {cur.rowcount}")
            accounts[t][i] = (row[2], row[3])
        cur.execute("INSERT INTO notes (tenant_id, id, body) VALUES (%s, 1, %s), (%s, 2, %s) RETURNING id, tenant_id",
                    (t, f"note 1 of {t}", t, f"note 2 of {t}; -- not a comment"))
        got = cur.fetchall()
        if got != [(1, t), (2, t)]:
            bad.append(f"tenant {t}: RETURNING {got}")
        notes[t][1] = f"note 1 of {t}"
        notes[t][2] = f"note 2 of {t}; -- not a comment"
    check("INSERT with bound parameters: 3 accounts and 2 notes (multi-row, RETURNING) for each of 200 tenants",
          [], first(bad))

    bad = [f"tenant {t}: {got}" for t in TENANTS if (got := account_rows(cur, t)) != accounts[t]]
    check("SELECT ... WHERE tenant_id = %s returns exactly each tenant's 3 accounts", [], first(bad))

    bad = []
    for n, t in enumerate(TENANTS):
        delta = D(n) + D("0.5")
        cur.execute("UPDATE accounts SET balance = balance + %s WHERE tenant_id = %s", (delta, t))
        if cur.rowcount != 3:
            bad.append(f"tenant {t}: UPDATE by tenant rowcount {cur.rowcount}")
        for i in accounts[t]:
            accounts[t][i] = (accounts[t][i][0], accounts[t][i][1] + delta)
        cur.execute("UPDATE accounts SET name = %s WHERE tenant_id = %s AND id = %s RETURNING balance",
                    (f"renamed {t}", t, 2))
        got = cur.fetchall()
        if got != [(accounts[t][2][1],)]:
            bad.append(f"tenant {t}: UPDATE ... RETURNING {got}, want balance {accounts[t][2][1]}")
        accounts[t][2] = (f"renamed {t}", accounts[t][2][1])
    check("UPDATE by tenant (3 rows each) and by tenant and id with RETURNING", [], first(bad))

    bad = []
    for n, t in enumerate(TENANTS):
        cur.execute("DELETE FROM accounts WHERE tenant_id = %s AND id = %s", (t, 3))
        if cur.rowcount != 1:
            bad.append(f"tenant {t}: DELETE account rowcount {cur.rowcount}")
        del accounts[t][3]
        if n % 2 == 0:
            cur.execute("DELETE FROM notes WHERE tenant_id = %s AND id = 2", (t,))
            if cur.rowcount != 1:
                bad.append(f"tenant {t}: DELETE note rowcount {cur.rowcount}")
            del notes[t][2]
    check("DELETE by tenant removes exactly one row each", [], first(bad))

    bad = [f"tenant {t}: {a} / {b}" for t in TENANTS
           if (a := account_rows(cur, t)) != accounts[t] or (b := note_rows(cur, t)) != notes[t]]
    check("after UPDATE and DELETE each tenant reads back exactly its rows", [], first(bad))

    cur.execute("""SELECT a.name, count(n.*) FROM accounts a LEFT JOIN notes n
                     ON n.tenant_id = a.tenant_id WHERE a.tenant_id = %s AND a.id = 1 GROUP BY a.name""",
                (TENANTS[0],))
    check("a join of accounts and notes by tenant runs on the tenant's shard",
          [(accounts[TENANTS[0]][1][0], len(notes[TENANTS[0]]))], cur.fetchall())
    conn.close()


def transactions():
    conn = connect(autocommit=False)
    cur = conn.cursor()
    bad = []
    committed = rolled_back = 0
    for n, t in enumerate(TENANTS):
        if n % 2 == 0:
            # A read first: the transaction is bound to the tenant's shard from the SELECT on.
            before = account_rows(cur, t)
            if before != accounts[t]:
                bad.append(f"tenant {t}: read in transaction {before}")
        cur.execute("UPDATE accounts SET balance = balance - %s WHERE tenant_id = %s AND id = %s",
                    (D("1.25"), t, 1))
        cur.execute("INSERT INTO notes (tenant_id, id, body) VALUES (%s, %s, %s)", (t, 100 + n, f"txn {n}"))
        cur.execute("SELECT count(*) FROM notes WHERE tenant_id = %s", (t,))
        seen = cur.fetchone()[0]
        if seen != len(notes[t]) + 1:
            bad.append(f"tenant {t}: the transaction sees {seen} notes, want {len(notes[t]) + 1}")
        if n % 3 == 2:
            conn.rollback()
            rolled_back += 1
        else:
            conn.commit()
            committed += 1
            accounts[t][1] = (accounts[t][1][0], accounts[t][1][1] - D("1.25"))
            notes[t][100 + n] = f"txn {n}"
    check(f"a transaction per tenant on accounts and notes ({committed} committed, {rolled_back} rolled back)",
          [], first(bad))
    conn.autocommit = True
    bad = [f"tenant {t}: {a} / {b}" for t in TENANTS
           if (a := account_rows(cur, t)) != accounts[t] or (b := note_rows(cur, t)) != notes[t]]
    check("committed transactions stayed, rolled back ones left nothing", [], first(bad))
    conn.close()


def execute_many():
    conn = connect(autocommit=False)
    cur = conn.cursor()
    tenants = on("s0", 10) + on("s1", 10)
    bad = []
    for t in tenants:
        rows = [(t, i, f"bulk {t}/{i}", D(i) / 4) for i in range(10, 20)]
        cur.executemany("INSERT INTO accounts (tenant_id, id, name, balance) VALUES (%s, %s, %s, %s)", rows)
        if cur.rowcount != 10:
            bad.append(f"tenant {t}: executemany rowcount {cur.rowcount}")
        cur.executemany("INSERT INTO notes (tenant_id, id, body) VALUES (%(t)s, %(id)s, %(body)s)",
                        [{"t": t, "id": i, "body": f"bulk note {i}"} for i in range(10, 15)])
        conn.commit()
        for r in rows:
            accounts[t][r[1]] = (r[2], r[3])
        for i in range(10, 15):
            notes[t][i] = f"bulk note {i}"
    check("executemany of one tenant's rows in one transaction, 10 tenants on each shard", [], first(bad))

    for t in (on("s0")[0], on("s1")[0]):
        rows = [(t, i, f"values {t}/{i}", D(i)) for i in range(30, 60)]
        psycopg2.extras.execute_values(cur, "INSERT INTO accounts (tenant_id, id, name, balance) VALUES %s", rows)
        check(f"execute_values: one 30-row INSERT of tenant {t} ({home[t]})", 30, cur.rowcount)
        conn.commit()
        for r in rows:
            accounts[t][r[1]] = (r[2], r[3])

    # One multi-row INSERT across tenants of both shards, outside a transaction: split by shard.
    conn.autocommit = True
    a, b = on("s0", 2), on("s1", 2)
    rows = [(t, 500, f"mixed {t}") for t in (a[0], b[0], a[1], b[1])]
    psycopg2.extras.execute_values(cur, "INSERT INTO notes (tenant_id, id, body) VALUES %s RETURNING tenant_id", rows)
    returned = sorted(r[0] for r in cur.fetchall())
    check("a multi-row INSERT of 4 tenants on both shards says 4 rows", 4, cur.rowcount)
    check("its RETURNING rows are the 4 rows, once each", sorted(r[0] for r in rows), returned)
    for r in rows:
        notes[r[0]][500] = r[2]
    bad = [f"tenant {t}: {a_} / {b_}" for t in tenants + a + b
           if (a_ := account_rows(cur, t)) != accounts[t] or (b_ := note_rows(cur, t)) != notes[t]]
    check("the bulk-loaded tenants read back exactly their rows", [], first(bad))
    conn.close()


def cross_shard():
    a, b = on("s0")[0], on("s1")[0]
    conn = connect(autocommit=False)
    cur = conn.cursor()
    cur.execute("INSERT INTO notes (tenant_id, id, body) VALUES (%s, 900, 'cross a')", (a,))
    try:
        cur.execute("INSERT INTO notes (tenant_id, id, body) VALUES (%s, 900, 'cross b')", (b,))
        check("a second tenant's INSERT on the other shard in one transaction fails", "0A000", None)
    except psycopg2.Error as e:
        check("a second tenant's INSERT on the other shard in one transaction fails with 0A000", "0A000", e.pgcode)
        msg = e.diag.message_primary or ""
        check("the error names both shards", True, "s0" in msg and "s1" in msg)
    conn.rollback()

    # Same the other way round, with UPDATEs, and COMMIT instead of ROLLBACK at the end: the
    # failed transaction must commit nothing either.
    cur.execute("UPDATE accounts SET balance = balance + 1000 WHERE tenant_id = %s", (b,))
    check(f"the first UPDATE (tenant {b} on s1) succeeds", len(accounts[b]), cur.rowcount)
    try:
        cur.execute("UPDATE accounts SET balance = balance + 1000 WHERE tenant_id = %s", (a,))
        check("an UPDATE of a tenant on the other shard in the same transaction fails", "0A000", None)
    except psycopg2.Error as e:
        check("an UPDATE of a tenant on the other shard in the same transaction fails with 0A000", "0A000", e.pgcode)
    conn.commit()  # PostgreSQL turns COMMIT of a failed transaction into ROLLBACK

    # The connection is usable afterwards, for either shard.
    cur.execute("SELECT count(*) FROM notes WHERE tenant_id = %s", (a,))
    check("after the failed transaction the connection reads tenant a", len(notes[a]), cur.fetchone()[0])
    conn.commit()
    cur.execute("SELECT count(*) FROM notes WHERE tenant_id = %s", (b,))
    check("and then tenant b in the next transaction", len(notes[b]), cur.fetchone()[0])
    conn.commit()
    conn.close()

    conn = connect()
    cur = conn.cursor()
    check("through the proxy: nothing of either failed transaction remains",
          [accounts[a], notes[a], accounts[b], notes[b]],
          [account_rows(cur, a), note_rows(cur, a), account_rows(cur, b), note_rows(cur, b)])
    conn.close()
    for shard in SHARDS:
        d = connect_direct(shard)
        c = d.cursor()
        c.execute("SELECT count(*) FROM notes WHERE id = 900")
        check(f"directly on {shard}: no row of the failed cross-shard INSERT", 0, c.fetchone()[0])
        d.close()


def reference_table():
    conn = connect()
    cur = conn.cursor()
    cur.execute("INSERT INTO plans VALUES (%s, %s), (%s, %s), (%s, %s)", (1, "free", 2, "pro", 3, "team"))
    check("a 3-row INSERT into the reference table says 3 rows, not 3 x shards", 3, cur.rowcount)
    cur.execute("UPDATE plans SET name = %s WHERE id = %s", ("pro+", 2))
    check("an UPDATE of one reference row says 1 row", 1, cur.rowcount)
    want = [(1, "free"), (2, "pro+"), (3, "team")]
    for shard in SHARDS:
        d = connect_direct(shard)
        c = d.cursor()
        c.execute("SELECT id, name FROM plans ORDER BY id")
        check(f"directly on {shard}: the reference rows are all there", want, c.fetchall())
        d.close()
    cur.execute("SELECT id, name FROM plans ORDER BY id")
    check("reading the reference table through the proxy returns each row once", want, cur.fetchall())
    for t in (on("s0")[0], on("s1")[0]):
        cur.execute("""SELECT a.id, p.name FROM accounts a JOIN plans p ON p.id = a.id
                        WHERE a.tenant_id = %s ORDER BY a.id""", (t,))
        check(f"a tenant's accounts joined with the reference table on {home[t]}",
              [(i, n) for i, n in want if i in accounts[t]], cur.fetchall())
    conn.close()


def hints():
    a, b = on("s0")[0], on("s1")[0]
    shard_total = {}
    for shard in SHARDS:
        d = connect_direct(shard)
        c = d.cursor()
        c.execute("SELECT count(*) FROM accounts")
        shard_total[shard] = c.fetchone()[0]
        d.close()
    conn = connect()
    cur = conn.cursor()
    for t in (a, b, a):
        cur.execute("SET shardline.tenant = %s", (str(t),))
        cur.execute("SELECT inet_server_port()")
        check(f"SET shardline.tenant = '{t}' routes SELECT inet_server_port() to {home[t]}",
              SHARD_PORTS[home[t]], cur.fetchone()[0])
        cur.execute("SELECT inet_server_port(), count(*) FROM accounts")
        check(f"with the hint for {t}, a tenant-less count(*) runs on {home[t]} alone",
              (SHARD_PORTS[home[t]], shard_total[home[t]]), cur.fetchone())
    cur.execute(f"SET shardline.tenant = '{b}'")
    cur.execute(f"/* shardline: tenant={a} */ SELECT inet_server_port(), count(*) FROM accounts")
    check(f"the SET hint (tenant {b}, {home[b]}) is stronger than a comment hint (tenant {a}, {home[a]})",
          (SHARD_PORTS[home[b]], shard_total[home[b]]), cur.fetchone())
    cur.execute("RESET shardline.tenant")
    for t in (a, b):
        cur.execute(f"/* shardline: tenant={t} */ SELECT inet_server_port()")
        check(f"a leading comment hint tenant={t} routes to {home[t]}", SHARD_PORTS[home[t]], cur.fetchone()[0])
        cur.execute(f"SELECT inet_server_port(), count(*) FROM accounts /* shardline: tenant={t} */")
        check(f"a trailing comment hint tenant={t} routes a count(*) to {home[t]} alone",
              (SHARD_PORTS[home[t]], shard_total[home[t]]), cur.fetchone())
    cur.execute("SELECT count(*) FROM accounts")
    check("after RESET a tenant-less count(*) covers both shards again",
          shard_total["s0"] + shard_total["s1"], cur.fetchone()[0])
    conn.close()


def placement():
    seen = {}  # tenant -> set of shards holding any of its rows
    direct = {s: ({}, {}) for s in SHARDS}
    for shard in SHARDS:
        d = connect_direct(shard)
        c = d.cursor()
        c.execute("SELECT tenant_id, id, name, balance FROM accounts")
        for t, i, name, bal in c.fetchall():
            direct[shard][0].setdefault(t, {})[i] = (name, bal)
            seen.setdefault(t, set()).add(shard)
        c.execute("SELECT tenant_id, id, body FROM notes")
        for t, i, body in c.fetchall():
            direct[shard][1].setdefault(t, {})[i] = body
            seen.setdefault(t, set()).add(shard)
        check(f"directly on {shard}: accounts and notes rows exist", True,
              bool(direct[shard][0]) and bool(direct[shard][1]))
        d.close()
    check("no rows of tenants the client never wrote", [], sorted(set(seen) - set(TENANTS)))
    check("every tenant's rows are on exactly one shard", [],
          first([f"{t}: {sorted(s)}" for t, s in seen.items() if len(s) != 1]))
    check("every tenant's rows are on the shard its hash and the directory name", [],
          first([f"{t}: on {sorted(seen.get(t, set()))}, want {home[t]}" for t in TENANTS if seen.get(t) != {home[t]}]))
    bad = []
    for t in TENANTS:
        s = home[t]
        if direct[s][0].get(t, {}) != accounts[t]:
            bad.append(f"tenant {t} accounts on {s}: {direct[s][0].get(t)} want {accounts[t]}")
        if direct[s][1].get(t, {}) != notes[t]:
            bad.append(f"tenant {t} notes on {s}: {direct[s][1].get(t)} want {notes[t]}")
    check("the rows on the shards are exactly what the client wrote", [], first(bad))

    conn = connect()
    cur = conn.cursor()
    bad = [f"tenant {t}: {a} / {b}" for t in TENANTS
           if (a := account_rows(cur, t)) != accounts[t] or (b := note_rows(cur, t)) != notes[t]]
    check("through the proxy each of the 200 tenants reads exactly its rows", [], first(bad))
    cur.execute("SELECT count(*), sum(balance) FROM accounts")
    check("a tenant-less count and sum through the proxy cover both shards",
          (sum(len(v) for v in accounts.values()), sum(b for v in accounts.values() for _, b in v.values())),
          cur.fetchone())
    conn.close()


for group in (setup, crud, transactions, execute_many, cross_shard, reference_table, hints, placement):
    step(group)
    if group is setup and len(home) != len(TENANTS):
        print("FAIL - setup did not place the tenants; the remaining groups cannot run")
        failed += 1
        break

print(f"result: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
