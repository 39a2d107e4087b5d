#!/usr/bin/python3
"""Reshard scenario of the benchmark suite (bench/reshard_bench.sh runs it; SPEC.md section 8).

Loads `items` on a 2-shard cluster, then measures INSERT latency through the proxy for tenants of
one logical shard L and for tenants of other logical shards: first for SECONDS without a move
(the baseline), then while `RESHARD MOVE L TO s1` runs. Reports p50/p99/max per group, the
latency of L's writes inside the cutover window (verify phase start to the flip), and the copy
throughput (rows of L / copy phase) next to a plain COPY ... TO STDOUT | COPY ... FROM STDIN of the
same rows between the same two servers. Output: a Markdown section on stdout.
"""
import argparse
import subprocess
import threading
import time

import psycopg2

SEED = 8816678312871386365
LOGICAL = ("mod(mod(hashint8extended(({})::int8, %d)::numeric + 23752253665144318179, "
           "18446744073709551616), 1024)" % SEED)


def logical_sql(v):
    return LOGICAL.format(v)


def connect(dsn):
    c = psycopg2.connect(dsn)
    c.autocommit = True
    return c


def pct(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100.0 * len(s)))]


class Writers:
    def __init__(self, dsn, groups, threads_per_group, run):
        self.dsn, self.groups, self.n, self.run = dsn, groups, threads_per_group, run
        self.stop = threading.Event()
        self.samples = {g: [] for g in groups}  # group -> [(t_end, latency_s, ok)]
        self.threads = []

    def start(self):
        for g, tenants in self.groups.items():
            for i in range(self.n):
                t = threading.Thread(target=self.loop, args=(g, tenants, i), daemon=True)
                t.start()
                self.threads.append(t)

    def loop(self, group, tenants, i):
        c = connect(self.dsn)
        cur = c.cursor()
        seq = 0
        base = (self.run * 100 + list(self.groups).index(group) * 10 + i + 1) * 10**9  # distinct per writer
        while not self.stop.is_set():
            tenant = tenants[seq % len(tenants)]
            t0 = time.perf_counter()
            ok = True
            try:
                cur.execute("INSERT INTO items (tenant_id, id, v) VALUES (%s, %s, 'bench')", (tenant, base + seq))
            except psycopg2.Error:
                ok = False
                try:
                    c.close()
                except psycopg2.Error:
                    pass
                c = connect(self.dsn)
                cur = c.cursor()
            t1 = time.perf_counter()
            self.samples[group].append((t1, t1 - t0, ok))
            seq += 1
            time.sleep(0.002)

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join()


def stats(samples, t_from=None, t_to=None):
    lat = [s[1] * 1000 for s in samples if (t_from is None or s[0] >= t_from) and (t_to is None or s[0] <= t_to)]
    errors = sum(1 for s in samples if not s[2] and (t_from is None or s[0] >= t_from) and (t_to is None or s[0] <= t_to))
    return "%.2f / %.2f / %.1f ms (%d writes, %d errors)" % (pct(lat, 50), pct(lat, 99), max(lat) if lat else float("nan"),
                                                             len(lat), errors)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--proxy", required=True)
    ap.add_argument("--admin", required=True)
    ap.add_argument("--shard", action="append", required=True, help="conninfo of s0 then s1 (superuser)")
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rows", type=int, default=200000, help="rows of the moved logical shard")
    a = ap.parse_args()

    s0, s1 = connect(a.shard[0]), connect(a.shard[1])
    px = connect(a.proxy)
    px.cursor().execute("DROP TABLE IF EXISTS items")
    px.cursor().execute("CREATE TABLE items (tenant_id bigint, id bigint, v text, PRIMARY KEY (tenant_id, id))")
    # The moved logical shard L: the one of tenant 1 if s0 owns it, else the first tenant on s0.
    cur = s0.cursor()
    cur.execute("SELECT t, %s FROM generate_series(1, 100000) t WHERE %s < 512 LIMIT 1" % (logical_sql("t"), logical_sql("t")))
    first, L = cur.fetchone()
    L = int(L)
    cur.execute("SELECT array_agg(t) FROM (SELECT t FROM generate_series(1, 200000) t WHERE %s = %d LIMIT 8) x"
                % (logical_sql("t"), L))
    moved = cur.fetchone()[0]
    cur.execute("SELECT array_agg(t) FROM (SELECT t FROM generate_series(1, 5000) t WHERE %s <> %d LIMIT 64) x"
                % (logical_sql("t"), L))
    others = cur.fetchone()[0]
    # Bulk rows straight into the shards: L's tenants on s0, every logical shard's some rows.
    per = max(1, a.rows // len(moved))
    cur.execute("INSERT INTO items SELECT t, g, repeat('r', 40) FROM unnest(%s::bigint[]) t, generate_series(1, %s) g",
                (moved, per))
    for conn, lo, hi in ((s0, 0, 511), (s1, 512, 1023)):
        conn.cursor().execute("INSERT INTO items SELECT t, g, repeat('r', 40) FROM generate_series(200001, 260000) t, "
                              "generate_series(1, 2) g WHERE %s BETWEEN %d AND %d" % (logical_sql("t"), lo, hi))
    s0.cursor().execute("ANALYZE items")
    rows_l = per * len(moved)

    groups = {"moved": moved, "others": others}
    base = Writers(a.proxy, groups, 2, 1)
    base.start()
    time.sleep(a.seconds)
    base.finish()

    w = Writers(a.proxy, groups, 2, 2)
    w.start()
    time.sleep(0.5)
    adm = connect(a.admin)
    acur = adm.cursor()
    acur.execute("RESHARD MOVE %d TO s1" % L)
    job = acur.fetchone()[0]
    phases = {}
    while True:
        acur.execute("SHOW RESHARDS")
        cols = [d[0] for d in acur.description]
        row = next((dict(zip(cols, r)) for r in acur.fetchall() if r[0] == job), None)
        if row and row["phase"] not in phases:
            phases[row["phase"]] = time.perf_counter()
        if row and row["phase"] in ("done", "failed", "aborted"):
            break
        time.sleep(0.01)
    time.sleep(0.5)
    w.finish()
    t_copy = phases.get("copy", min(phases.values()))
    t_catchup = phases.get("catchup")
    t_verify = phases.get("verify")
    t_flip = phases.get("cleanup", phases.get("done"))

    # The same rows with a plain COPY pipe between the same servers.
    # (after the move L's rows are on s1: they go back to s0, the other direction between the same servers)
    s0.cursor().execute("DROP TABLE IF EXISTS items_pipe; CREATE TABLE items_pipe (LIKE items INCLUDING ALL)")
    t0 = time.perf_counter()
    subprocess.run("psql -X -q '%s' -c 'COPY (SELECT * FROM items WHERE %s = %d) TO STDOUT' | "
                   "psql -X -q '%s' -c 'COPY items_pipe FROM STDIN'" % (a.shard[1], logical_sql("tenant_id"), L,
                                                                         a.shard[0]),
                   shell=True, check=True)
    pipe_s = time.perf_counter() - t0
    s0.cursor().execute("DROP TABLE items_pipe")

    print("## Reshard (RESHARD MOVE of one logical shard, %d rows, under writes)" % rows_l)
    print()
    print("Job %s ended %s. INSERT latency through the proxy, p50 / p99 / max (goal for the moved logical shard "
          "during the cutover: p99 <= 100 ms, max <= 1 s; others: no change against the baseline):" % (job, row["phase"]))
    print()
    print("| writes | baseline (no move) | during the move | cutover window (verify..flip) |")
    print("|---|---|---|---|")
    for g in ("moved", "others"):
        print("| %s | %s | %s | %s |" % ("logical shard %d" % L if g == "moved" else "other logical shards",
                                      stats(base.samples[g]), stats(w.samples[g], t_copy),
                                      stats(w.samples[g], t_verify, (t_flip or t_verify) + 0.2) if t_verify else "-"))
    print()
    if t_catchup:
        copy_s = t_catchup - t_copy
        print("Copy: %d rows in %.2f s by the subscription's initial copy (%.0f rows/s, phase copy as seen in SHOW "
              "RESHARDS at 10 ms); plain `COPY ... TO STDOUT | COPY ... FROM STDIN` of the same rows: %.2f s "
              "(%.0f rows/s). Cutover window (verify to flip): %.0f ms."
              % (rows_l, copy_s, rows_l / copy_s, pipe_s, rows_l / pipe_s, ((t_flip or t_verify) - t_verify) * 1000
                 if t_verify else float("nan")))
    print()


if __name__ == "__main__":
    main()
