// postgres.js ("postgres", pinned in package.json), unmodified, against one target (run by
// tests/clients/postgresjs_test.sh). Targets as in ../driver_harness.py: direct (PostgreSQL
// itself: everything must pass), proxy-1shard, proxy-2shard (pjs_items sharded by tenant_id).
//
// Usage: node postgresjs_client.js TARGET HOST PORT USER PASSWORD DATABASE S0_PORT S1_PORT
// Prints ok / FAIL / xfail lines and `result: N passed, M failed, K expected failures`.
'use strict';

const assert = require('node:assert');
const postgres = require('postgres');

// Scenario -> the proxy bug it hits ("TARGET:scenario" for one target only). A listed scenario
// that passes is a failure, so fixed bugs get their entry removed.
const KNOWN_FAILURES = {
  listen_notify: 'LISTEN is refused (0A000) in transaction pooling: the proxy cannot deliver notifications there',
};

const [target, host, portArg, user, password, database, s0Arg, s1Arg] = process.argv.slice(2);
const port = Number(portArg);
const shardPorts = [Number(s0Arg), Number(s1Arg)];
const sharded = target === 'proxy-2shard';
const seed = Math.floor(Math.random() * 2 ** 30);
let rngState = seed;
function rand(n) { // a small seeded generator (mulberry32), so a failing run can be replayed
  rngState = (rngState + 0x6D2B79F5) | 0;
  let t = Math.imul(rngState ^ (rngState >>> 15), 1 | rngState);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
}
console.log(`# postgres.js, target ${target} on port ${port}, seed ${seed}`);

let passed = 0;
let failed = 0;
let xfailed = 0;
let scenario = '';
let scenarioFailures = 0;

function knownBug(name) {
  if (target === 'direct') return null;
  return KNOWN_FAILURES[`${target}:${name}`] || KNOWN_FAILURES[name] || null;
}

function report(text) {
  scenarioFailures++;
  if (knownBug(scenario)) {
    xfailed++;
    console.log(`xfail - [${target}] ${scenario}: ${text}`);
  } else {
    failed++;
    console.log(`FAIL - [${target}] ${scenario}: ${text}`);
  }
}

function check(name, expected, actual) {
  try {
    assert.deepStrictEqual(actual, expected);
    passed++;
    console.log(`ok   - [${target}] ${scenario}: ${name}`);
  } catch (e) {
    const show = (v) => JSON.stringify(v, (k, x) => (typeof x === 'bigint' ? x.toString() : x));
    report(`${name}\n       expected: ${show(expected)}\n       actual:   ${show(actual)}`);
  }
}

async function run(name, fn, timeoutMs = 20000) {
  scenario = name;
  scenarioFailures = 0;
  let timer;
  try {
    await Promise.race([fn(), new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    })]);
  } catch (e) {
    report(`threw ${e.code ? `[${e.code}] ` : ''}${e.message}`);
  } finally {
    clearTimeout(timer);
  }
  const bug = knownBug(name);
  if (bug && scenarioFailures === 0) {
    failed++;
    console.log(`FAIL - [${target}] ${name}: passed, but KNOWN_FAILURES lists it (${bug}); remove it from the list`);
  } else if (bug) {
    console.log(`# [${target}] ${name}: expected failure: ${bug}`);
  }
}

const options = { host, port, user, password, database, connect_timeout: 10, idle_timeout: 5,
  onnotice: () => {}, max: 5 };
const sql = postgres(options);
const other = postgres({ ...options, max: 1 }); // a separate client: what others see

let tenants = [];
for (let i = 0; i < 12; i++) tenants.push(1 + rand(9999));
for (let i = 0; i < 12; i++) tenants.push(2 ** 33 + rand(2 ** 30) * 7);
tenants = [...new Set(tenants)];

// tenant -> shard index, from PostgreSQL's own hash (SPEC 4); s0 holds logical 0-511.
async function shardOf(keys) {
  const d = postgres({ ...options, port: shardPorts[0], database: 'app', max: 1 });
  try {
    return await d.begin(async (tx) => {
      await tx`CREATE TEMP TABLE placement_oracle (k bigint) PARTITION BY HASH (k) ON COMMIT DROP`;
      const rows = await tx`SELECT k::text, r FROM unnest(${keys.map(String)}::bigint[]) k, generate_series(0, 1023) r
        WHERE satisfies_hash_partition('placement_oracle'::regclass, 1024, r, k)`;
      return Object.fromEntries(rows.map((r) => [r.k, r.r <= 511 ? 0 : 1]));
    });
  } finally {
    await d.end();
  }
}

async function countOf(t, where = 'true') {
  const [r] = await other`SELECT count(*)::int AS n FROM pjs_items WHERE tenant_id = ${t} AND ${other.unsafe(where)}`;
  return r.n;
}

async function setup() {
  await sql`DROP TABLE IF EXISTS pjs_items`;
  await sql`DROP TABLE IF EXISTS pjs_log`;
  await sql`CREATE TABLE pjs_items (tenant_id bigint, id int, name text NOT NULL, qty int, PRIMARY KEY (tenant_id, id))`;
  await sql`CREATE TABLE pjs_log (id int PRIMARY KEY, note text)`;
  if (sharded) {
    // The proxy learns a new table's key type after its CREATE; wait for it here (the asyncpg
    // test checks what happens before).
    let got = null;
    for (let i = 0; i < 100 && got !== shardPorts[1]; i++) {
      [{ p: got }] = await sql`SELECT inet_server_port() AS p, count(*) FROM pjs_items WHERE tenant_id = ${tenants[0]}`;
      if (got !== shardPorts[1]) await new Promise((r) => setTimeout(r, 100));
    }
    check('the proxy routes pjs_items by tenant_id within 10 s of its CREATE', shardPorts[1], got);
  }
  for (const t of tenants) {
    const rows = Array.from({ length: 20 }, (_, k) => ({ tenant_id: t, id: k + 1, name: `n-${t}-${k + 1}`, qty: k + 1 }));
    await sql`INSERT INTO pjs_items ${sql(rows, 'tenant_id', 'id', 'name', 'qty')}`;
  }
  const counts = [];
  for (const t of tenants) counts.push(await countOf(t));
  check('a multi-row insert per tenant stored 20 rows each', tenants.map(() => 20), counts);
  if (sharded) {
    const home = await shardOf(tenants);
    for (const i of [0, 1]) {
      const d = postgres({ ...options, port: shardPorts[i], database: 'app', max: 1 });
      const held = (await d`SELECT DISTINCT tenant_id::text AS t FROM pjs_items ORDER BY 1`).map((r) => r.t);
      await d.end();
      check(`shard s${i} holds the rows of exactly its tenants`,
        tenants.filter((t) => home[String(t)] === i).map(String).sort(), held);
    }
  }
}

async function concurrency() {
  // The first 50 on tenants off the home shard (tenants starts with them): each connection's
  // first query is then one a statement misrouted to the home shard would not answer.
  const offHome = tenants.slice(0, 6);
  const queries = Array.from({ length: 300 }, (_, n) =>
    [n < 50 ? offHome[rand(offHome.length)] : tenants[rand(tenants.length)], 1 + rand(20)]);
  const results = await Promise.all(queries.map(([t, i]) =>
    sql`SELECT name, qty FROM pjs_items WHERE tenant_id = ${t} AND id = ${i}`.then((r) => r[0] || null)));
  const wrong = queries.map((q, n) => [q, results[n]])
    .filter(([[t, i], r]) => !r || r.name !== `n-${t}-${i}` || r.qty !== i).slice(0, 3);
  check('300 concurrent queries on 5 connections each return their own row', [], wrong);
}

async function transactions() {
  const t = tenants[1];
  const err = await sql.begin(async (tx) => {
    await tx`INSERT INTO pjs_items (tenant_id, id, name, qty) VALUES (${t}, 100, 'undone', 0)`;
    check('inside the transaction the row is visible', 1,
      (await tx`SELECT count(*)::int AS n FROM pjs_items WHERE tenant_id = ${t} AND id = 100`)[0].n);
    check('another client does not see it yet', 0, await countOf(t, 'id = 100'));
    throw new Error('undo');
  }).catch((e) => e.message);
  check('the transaction threw', 'undo', err);
  check('after the rollback another client sees no row', 0, await countOf(t, 'id = 100'));
  await sql.begin(async (tx) => {
    await tx`INSERT INTO pjs_items (tenant_id, id, name, qty) VALUES (${t}, 101, 'kept', 0)`;
    await tx`UPDATE pjs_items SET qty = 500 WHERE tenant_id = ${t} AND id = 1`;
  });
  check('after the commit another client sees both writes', 2, await countOf(t, '(id = 101 OR (id = 1 AND qty = 500))'));
  const dup = await sql.begin(async (tx) => {
    await tx`UPDATE pjs_items SET qty = 999 WHERE tenant_id = ${t} AND id = 2`;
    await tx`INSERT INTO pjs_items (tenant_id, id, name, qty) VALUES (${t}, 1, 'duplicate', 0)`;
  }).catch((e) => e.code);
  check('a duplicate key fails the transaction with 23505', '23505', dup);
  check('and its update is undone', 1, await countOf(t, 'id = 2 AND qty = 2'));
}

async function savepoints() {
  const t = tenants[2];
  await sql.begin(async (tx) => {
    await tx`INSERT INTO pjs_items (tenant_id, id, name, qty) VALUES (${t}, 200, 'outer', 0)`;
    await tx.savepoint(async (sp) => {
      await sp`INSERT INTO pjs_items (tenant_id, id, name, qty) VALUES (${t}, 201, 'inner', 0)`;
      throw new Error('undo savepoint');
    }).catch(() => {});
    await tx`INSERT INTO pjs_items (tenant_id, id, name, qty) VALUES (${t}, 202, 'after', 0)`;
  });
  const rows = await other`SELECT id FROM pjs_items WHERE tenant_id = ${t} AND id >= 200 ORDER BY id`;
  check('the rolled-back savepoint\'s row is gone, the others committed', [200, 202], rows.map((r) => r.id));
}

async function isolation() {
  const t = tenants[3];
  for (const [level, shown] of [['read committed', 'read committed'], ['repeatable read', 'repeatable read'],
    ['serializable', 'serializable']]) {
    const got = await sql.begin(`isolation level ${level}`, async (tx) => {
      await tx`SELECT count(*) FROM pjs_items WHERE tenant_id = ${t}`;
      return (await tx`SELECT current_setting('transaction_isolation') AS l`)[0].l;
    });
    check(`begin('isolation level ${level}'): the server reports it`, shown, got);
  }
  const [before, during] = await sql.begin('isolation level repeatable read', async (tx) => {
    const b = (await tx`SELECT count(*)::int AS n FROM pjs_items WHERE tenant_id = ${t}`)[0].n;
    await other`INSERT INTO pjs_items (tenant_id, id, name, qty) VALUES (${t}, 300, 'concurrent', 0)`;
    return [b, (await tx`SELECT count(*)::int AS n FROM pjs_items WHERE tenant_id = ${t}`)[0].n];
  });
  check('repeatable read: a concurrent commit stays invisible', before, during);
  check('afterwards it is visible', before + 1, await countOf(t));
}

async function cursors() {
  const t = tenants[4];
  await sql`INSERT INTO pjs_items ${sql(Array.from({ length: 300 }, (_, k) =>
    ({ tenant_id: t, id: 1000 + k, name: 'c', qty: k })), 'tenant_id', 'id', 'name', 'qty')}`;
  const ids = [];
  let batches = 0;
  await sql`SELECT id FROM pjs_items WHERE tenant_id = ${t} AND id >= 1000 ORDER BY id`.cursor(50, (rows) => {
    batches++;
    for (const r of rows) ids.push(r.id);
  });
  check('a cursor of 50 returned all 300 rows in 6 batches', [Array.from({ length: 300 }, (_, k) => 1000 + k), 6],
    [ids, batches]);
}

async function copy() {
  const { pipeline } = require('node:stream/promises');
  const { Readable, Writable } = require('node:stream');
  const lines = Array.from({ length: 2000 }, (_, k) => `${k + 1}\tnote ${k + 1}\n`).join('');
  await pipeline(Readable.from([lines]), await sql`COPY pjs_log (id, note) FROM STDIN`.writable());
  check('COPY FROM STDIN stored 2000 rows', [{ n: 2000, s: 2001000 }],
    [...await other`SELECT count(*)::int AS n, sum(id)::int AS s FROM pjs_log`]);
  let out = '';
  await pipeline(await sql`COPY (SELECT id, note FROM pjs_log ORDER BY id) TO STDOUT`.readable(),
    new Writable({ write(chunk, enc, cb) { out += chunk; cb(); } }));
  check('COPY TO STDOUT returns exactly the loaded text', lines, out);
}

async function simpleProtocol() {
  const results = await sql.unsafe(`SELECT 1 AS a; SELECT name FROM pjs_items WHERE tenant_id = ${tenants[5]} AND id = 3`);
  check('sql.unsafe with two statements returns both results', [[{ a: 1 }], [{ name: `n-${tenants[5]}-3` }]],
    results.map((r) => [...r]));
}

async function listenNotify() {
  const got = [];
  const listener = postgres({ ...options, max: 1 });
  try {
    await listener.listen('pjs_channel', (payload) => got.push(payload));
    await other.notify('pjs_channel', 'hello');
    for (let i = 0; i < 60 && got.length < 1; i++) await new Promise((r) => setTimeout(r, 50));
    check('the listener received the notification', ['hello'], got);
  } finally {
    await listener.end({ timeout: 1 });
  }
}

(async () => {
  const home = await shardOf(tenants);
  tenants.sort((a, b) => home[String(a)] - home[String(b)]).reverse(); // tenants off the home shard first
  await run('setup', setup);
  await run('concurrency', concurrency);
  await run('transactions', transactions);
  await run('savepoints', savepoints);
  await run('isolation', isolation);
  await run('cursors', cursors);
  await run('copy', copy);
  await run('simple_protocol', simpleProtocol);
  await run('listen_notify', listenNotify, 10000);
  await Promise.race([Promise.all([sql.end({ timeout: 2 }), other.end({ timeout: 2 })]),
    new Promise((r) => setTimeout(r, 5000))]);
  console.log(`result: ${passed} passed, ${failed} failed, ${xfailed} expected failures`);
  process.exit(failed ? 1 : 0);
})().catch((e) => {
  console.log(`FAIL - [${target}] crashed: ${e.stack}`);
  console.log(`result: ${passed} passed, ${failed + 1} failed, ${xfailed} expected failures`);
  process.exit(1);
});
