"""psycopg2, unmodified, against the shardline proxy (run by tests/clients/psycopg_test.sh).

Usage: /usr/bin/python3 psycopg_client.py HOST PORT USER PASSWORD DATABASE

Prints `ok - ...` / `FAIL - ...` per check and ends with `result: N passed, M failed`.
"""
import base64
import datetime
import decimal
import hashlib
import hmac
import io
import os
import socket
import struct
import sys

import psycopg2
import psycopg2.errors
import psycopg2.extras

HOST, PORT, USER, PASSWORD, DATABASE = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

passed = 0
failed = 0


def check(name, expected, actual):
    global passed, failed
    if expected == actual:
        passed += 1
        print(f"ok   - {name}")
    else:
        failed += 1
        print(f"FAIL - {name}\n       expected: {expected!r}\n       actual:   {actual!r}")


def connect(**kw):
    args = dict(host=HOST, port=PORT, user=USER, password=PASSWORD, dbname=DATABASE,
                application_name="psycopg-test", connect_timeout=10)
    args.update(kw)
    return psycopg2.connect(**args)


def step(fn):
    """Runs one group of checks; an unexpected exception is a failure, not a crash."""
    global failed
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - any driver error is a test failure
        failed += 1
        print(f"FAIL - {fn.__name__} raised {type(e).__name__}: {e}".rstrip())


def crud():
    conn = connect()
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS py_items")
    cur.execute("""CREATE TABLE py_items (id int PRIMARY KEY, name text, price numeric(10,2),
                   created timestamptz, tags text[], doc jsonb, blob bytea, note text)""")
    conn.commit()
    created = datetime.datetime(2024, 2, 29, 12, 30, 15, 123456, tzinfo=datetime.timezone.utc)
    cur.execute(
        "INSERT INTO py_items VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id, name",
        (1, "O'Brien; DROP TABLE x -- \u00e9\u4e2d", decimal.Decimal("19.99"), created, ["a", "b c"],
         psycopg2.extras.Json({"k": [1, 2, {"n": None}]}), psycopg2.Binary(b"\x00\x01\xff"), None))
    check("INSERT ... RETURNING with bound parameters", [(1, "O'Brien; DROP TABLE x -- \u00e9\u4e2d")],
          cur.fetchall())
    cur.execute("INSERT INTO py_items (id, name, price) VALUES (%(id)s, %(name)s, %(price)s)",
                {"id": 2, "name": "second", "price": decimal.Decimal("0.50")})
    check("INSERT with named parameters affects one row", 1, cur.rowcount)
    conn.commit()

    cur.execute("SELECT name, price, created, tags, doc, blob, note FROM py_items WHERE id = %s", (1,))
    row = cur.fetchone()
    check("SELECT returns every bound value with its type",
          ("O'Brien; DROP TABLE x -- \u00e9\u4e2d", decimal.Decimal("19.99"), created, ["a", "b c"],
           {"k": [1, 2, {"n": None}]}, b"\x00\x01\xff", None),
          (row[0], row[1], row[2].astimezone(datetime.timezone.utc), row[3], row[4], bytes(row[5]), row[6]))
    check("cursor.description names the columns",
          ["name", "price", "created", "tags", "doc", "blob", "note"], [d.name for d in cur.description])

    cur.execute("UPDATE py_items SET price = price * %s WHERE id IN %s", (2, (1, 2)))
    check("UPDATE with a tuple parameter reports 2 rows", 2, cur.rowcount)
    cur.execute("DELETE FROM py_items WHERE id = %s", (2,))
    check("DELETE reports 1 row", 1, cur.rowcount)
    conn.commit()
    cur.execute("SELECT id, price FROM py_items ORDER BY id")
    check("the table holds the updated row only", [(1, decimal.Decimal("39.98"))], cur.fetchall())

    # A None parameter compared with IS NOT DISTINCT FROM, and a literal percent sign.
    cur.execute("SELECT count(*) FROM py_items WHERE note IS NOT DISTINCT FROM %s AND name LIKE '%%Brien%%'",
                (None,))
    check("NULL parameter and escaped %% in the query text", 1, cur.fetchone()[0])
    conn.commit()
    conn.close()


def execute_many():
    conn = connect()
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS py_many")
    cur.execute("CREATE TABLE py_many (id int PRIMARY KEY, label text, qty int)")
    cur.executemany("INSERT INTO py_many VALUES (%s, %s, %s)",
                    [(i, f"label-{i}", i % 10) for i in range(1, 501)])
    conn.commit()
    cur.execute("SELECT count(*), sum(qty), min(label), max(id) FROM py_many")
    check("executemany inserted 500 rows", (500, 2250, "label-1", 500), cur.fetchone())
    psycopg2.extras.execute_values(cur, "INSERT INTO py_many VALUES %s",
                                   [(i, f"v-{i}", 1) for i in range(501, 1001)], page_size=100)
    conn.commit()
    cur.execute("SELECT count(*) FROM py_many WHERE label LIKE 'v-%%'")
    check("execute_values inserted 500 more rows in pages of 100", 500, cur.fetchone()[0])
    conn.close()


def transactions():
    conn = connect()
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM py_many")
    before = cur.fetchone()[0]
    cur.execute("INSERT INTO py_many VALUES (5001, 'tx', 1)")
    cur.execute("UPDATE py_many SET qty = -100 WHERE id = 1")
    cur.execute("SELECT count(*), (SELECT qty FROM py_many WHERE id = 1) FROM py_many")
    check("the open transaction sees its own writes", (before + 1, -100), cur.fetchone())
    check("psycopg2 reports the transaction in progress",
          psycopg2.extensions.TRANSACTION_STATUS_INTRANS, conn.get_transaction_status())
    conn.rollback()
    cur.execute("SELECT count(*), (SELECT qty FROM py_many WHERE id = 1) FROM py_many")
    check("rollback undid the insert and the update", (before, 1), cur.fetchone())
    conn.rollback()

    # `with conn` commits on success; another connection sees the row.
    with conn:
        with conn.cursor() as c2:
            c2.execute("INSERT INTO py_many VALUES (5002, 'committed', 2)")
    other = connect()
    oc = other.cursor()
    oc.execute("SELECT label FROM py_many WHERE id = 5002")
    check("a committed transaction is visible to another connection", [("committed",)], oc.fetchall())
    other.close()

    # Autocommit mode: every statement is its own transaction.
    conn.autocommit = True
    cur.execute("INSERT INTO py_many VALUES (5003, 'auto', 3)")
    check("autocommit leaves no transaction open", psycopg2.extensions.TRANSACTION_STATUS_IDLE,
          conn.get_transaction_status())
    conn.close()


def server_errors():
    conn = connect()
    cur = conn.cursor()
    try:
        cur.execute("INSERT INTO py_many VALUES (%s, 'dup', 0)", (1,))
        check("a duplicate key raises UniqueViolation", "UniqueViolation", "no error")
    except psycopg2.errors.UniqueViolation as e:
        check("a duplicate key raises UniqueViolation with SQLSTATE 23505", "23505", e.pgcode)
        check("the error carries the server's detail", "Key (id)=(1) already exists.", e.diag.message_detail)
    check("the failed transaction is in error state", psycopg2.extensions.TRANSACTION_STATUS_INERROR,
          conn.get_transaction_status())
    try:
        cur.execute("SELECT 1")
        check("statements in an aborted transaction fail", "InFailedSqlTransaction", "no error")
    except psycopg2.errors.InFailedSqlTransaction as e:
        check("statements in an aborted transaction fail with 25P02", "25P02", e.pgcode)
    conn.rollback()
    cur.execute("SELECT %s::int / %s", (10, 4))
    check("after rollback the connection works again", 2, cur.fetchone()[0])
    try:
        cur.execute("SELECT 1 / %s", (0,))
    except psycopg2.errors.DivisionByZero as e:
        check("division by zero raises 22012", "22012", e.pgcode)
    conn.rollback()
    try:
        cur.execute("SELEC oops")
    except psycopg2.errors.SyntaxError as e:
        check("a syntax error raises 42601 with the position", ("42601", "1"),
              (e.pgcode, e.diag.statement_position))
    conn.rollback()
    cur.execute("SELECT count(*) FROM py_many WHERE id = 1")
    check("the row that caused the duplicate error is unchanged", 1, cur.fetchone()[0])
    conn.commit()
    conn.close()


def copy_both_ways():
    conn = connect()
    cur = conn.cursor()
    cur.execute("DROP TABLE IF EXISTS py_copy")
    cur.execute("CREATE TABLE py_copy (id int, name text, amount numeric)")
    lines = "".join(f"{i}\tname\\t{i}\t{i}.5\n" for i in range(1, 2001)) + "2001\t\\N\t0\n"
    cur.copy_expert("COPY py_copy FROM STDIN", io.StringIO(lines))
    check("copy_expert FROM STDIN loaded 2001 rows", 2001, cur.rowcount)
    conn.commit()
    cur.execute("SELECT count(*), sum(id), sum(amount), count(name), max(name) FROM py_copy")
    check("the copied rows have the right values", (2001, 2003001, decimal.Decimal("2002000.0"), 2000,
                                                     "name\t999"), cur.fetchone())
    out = io.StringIO()
    cur.copy_expert("COPY (SELECT * FROM py_copy ORDER BY id) TO STDOUT", out)
    check("copy_expert TO STDOUT returns exactly the loaded text", lines, out.getvalue())
    out = io.StringIO()
    cur.copy_expert("COPY (SELECT id, name FROM py_copy WHERE id <= 2 ORDER BY id) TO STDOUT WITH (FORMAT csv, HEADER)", out)
    check("copy_expert TO STDOUT in CSV with a header", "id,name\n1,name\t1\n2,name\t2\n", out.getvalue())
    conn.commit()
    # A COPY whose data is bad fails as a whole and the connection recovers.
    try:
        cur.copy_expert("COPY py_copy FROM STDIN", io.StringIO("1\tok\t1\nx\tbad\t2\n"))
        check("a bad COPY row raises InvalidTextRepresentation", "error", "no error")
    except psycopg2.errors.InvalidTextRepresentation as e:
        check("a bad COPY row raises 22P02", "22P02", e.pgcode)
    conn.rollback()
    cur.execute("SELECT count(*) FROM py_copy")
    check("the failed COPY added no row", 2001, cur.fetchone()[0])
    conn.commit()
    conn.close()


def named_cursor():
    conn = connect()
    # A named (server-side) cursor lives inside the transaction psycopg2 opens for it.
    cur = conn.cursor(name="big_scan")
    cur.itersize = 64
    cur.execute("SELECT id, qty FROM py_many WHERE id <= %s ORDER BY id", (1000,))
    total = 0
    count = 0
    for row_id, qty in cur:
        total += row_id
        count += 1
    check("a named cursor streams every row in batches", (1000, 500500), (count, total))
    cur.close()
    cur = conn.cursor(name="second_cursor")
    cur.execute("SELECT id FROM py_many ORDER BY id")
    first = cur.fetchmany(3)
    cur.scroll(10)
    after = cur.fetchone()
    check("fetchmany and scroll on a named cursor", ([(1,), (2,), (3,)], (14,)), (first, after))
    cur.close()
    conn.commit()
    conn.close()


def wrong_password():
    try:
        psycopg2.connect(host=HOST, port=PORT, user=USER, password=PASSWORD + "-wrong", dbname=DATABASE,
                         connect_timeout=10)
        check("a wrong password is refused", "OperationalError", "connected")
    except psycopg2.OperationalError as e:
        # psycopg2 exposes no SQLSTATE for a failed connection, only libpq's message.
        check("a wrong password is refused with the authentication message", True,
              f'password authentication failed for user "{USER}"' in str(e))
    check("a wrong password fails with SQLSTATE 28P01 (raw SCRAM exchange)", "28P01",
          raw_scram_login(PASSWORD + "-wrong").get("C"))
    check("the right password passes the same raw SCRAM exchange", "ok", raw_scram_login(PASSWORD).get("ok"))


def raw_scram_login(password):
    """Logs in with SCRAM-SHA-256 over a raw socket; returns the ErrorResponse fields or {'ok': 'ok'}."""
    s = socket.create_connection((HOST, PORT), timeout=10)

    def send(tag, body):
        s.sendall(tag + struct.pack("!I", len(body) + 4) + body)

    def recv():
        head = b""
        while len(head) < 5:
            chunk = s.recv(5 - len(head))
            if not chunk:
                raise ConnectionError("connection closed")
            head += chunk
        tag, n = head[:1], struct.unpack("!I", head[1:])[0]
        body = b""
        while len(body) < n - 4:
            chunk = s.recv(n - 4 - len(body))
            if not chunk:
                raise ConnectionError("connection closed")
            body += chunk
        return tag, body

    def error_fields(body):
        return {f[:1]: f[1:] for f in body.decode().split("\0") if f}

    params = f"user\0{USER}\0database\0{DATABASE}\0\0".encode()
    body = struct.pack("!I", 196608) + params
    s.sendall(struct.pack("!I", len(body) + 4) + body)
    tag, body = recv()
    if tag == b"E":
        return error_fields(body)
    code = struct.unpack("!I", body[:4])[0]
    if code != 10 or b"SCRAM-SHA-256" not in body:
        return {"unexpected": f"auth request {code}"}
    nonce = base64.b64encode(os.urandom(18)).decode()
    first_bare = f"n=,r={nonce}"
    msg = ("n,," + first_bare).encode()
    send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(msg)) + msg)
    tag, body = recv()
    if tag == b"E":
        return error_fields(body)
    server_first = body[4:].decode()
    attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={attrs['r']}"
    auth_message = f"{first_bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    send(b"p", f"{without_proof},p={base64.b64encode(proof).decode()}".encode())
    while True:
        tag, body = recv()
        if tag == b"E":
            s.close()
            return error_fields(body)
        if tag == b"Z":
            send(b"X", b"")
            s.close()
            return {"ok": "ok"}


for group in (crud, execute_many, transactions, server_errors, copy_both_ways, named_cursor, wrong_password):
    step(group)

print(f"result: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
