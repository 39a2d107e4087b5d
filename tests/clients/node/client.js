// node-postgres, unmodified, against the shardline proxy (run by tests/clients/node_test.sh).
//
// Usage: node client.js HOST PORT USER PASSWORD DATABASE
// Prints `ok - ...` / `FAIL - ...` per check and ends with `result: N passed, M failed`.
'use strict';

const assert = require('node:assert');
const { Client, Pool } = require('pg');

const [host, port, user, password, database] = process.argv.slice(2);
const config = { host, port: Number(port), user, password, database, application_name: 'node-test',
  connectionTimeoutMillis: 10000, query_timeout: 15000 }; // no answer: fail after 15 s, not hang

let passed = 0;
let failed = 0;

function check(name, expected, actual) {
  try {
    assert.deepStrictEqual(actual, expected);
    passed++;
    console.log(`ok   - ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name}\n       expected: ${JSON.stringify(expected)}\n       actual:   ${JSON.stringify(actual)}`);
  }
}

// Runs one group of checks; an unexpected error is a failure, not a crash.
const started = Date.now();
async function step(name, fn) {
  if (Date.now() - started > 60000) {
    failed++;
    console.log(`FAIL - ${name} skipped: the 60 s time budget is spent`);
    return;
  }
  try {
    await fn();
  } catch (e) {
    failed++;
    console.log(`FAIL - ${name} threw ${e.code ? `[${e.code}] ` : ''}${e.message}`);
  }
}

// The error a promise rejects with, or null.
async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return e;
  }
}

async function setup() {
  const c = new Client(config);
  await c.connect();
  await c.query('DROP TABLE IF EXISTS n_items');
  await c.query(`CREATE TABLE n_items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2),
                 tags text[], doc jsonb, created timestamptz)`);
  const r = await c.query(`INSERT INTO n_items (id, name, price)
                           SELECT g, 'item-' || g, g * 0.5 FROM generate_series(1, 100) g`);
  check('setup inserted 100 rows', 100, r.rowCount);
  await c.end();
}

async function parameterized() {
  const c = new Client(config);
  await c.connect();
  const created = new Date('2024-02-29T12:30:15.123Z');
  const ins = await c.query(
    'INSERT INTO n_items VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, name, price, tags, doc, created',
    [500, "O'Brien \u00e9\u4e2d", '12.34', ['a', 'b c', null], { k: [1, 2, { n: null }] }, created]);
  check('INSERT ... RETURNING with 6 parameters', [{ id: 500, name: "O'Brien \u00e9\u4e2d", price: '12.34',
    tags: ['a', 'b c', null], doc: { k: [1, 2, { n: null }] }, created }], ins.rows);
  const sel = await c.query('SELECT id, name FROM n_items WHERE id = ANY($1::int[]) ORDER BY id', [[3, 7, 500]]);
  check('SELECT with an array parameter', [[3, 'item-3'], [7, 'item-7'], [500, "O'Brien \u00e9\u4e2d"]],
    sel.rows.map((r) => [r.id, r.name]));
  const nul = await c.query('SELECT $1::text IS NULL AS is_null, $2::int + 1 AS next', [null, 41]);
  check('NULL and integer parameters', [{ is_null: true, next: 42 }], nul.rows);
  const upd = await c.query('UPDATE n_items SET price = price + $1 WHERE id <= $2', ['1.00', 10]);
  check('UPDATE with parameters reports 10 rows', 10, upd.rowCount);
  const rowMode = await c.query({ text: 'SELECT $1::int AS a, $2::text AS b', values: [1, 'x'], rowMode: 'array' });
  check('rowMode array and field metadata', { rows: [[1, 'x']], fields: ['a', 'b'] },
    { rows: rowMode.rows, fields: rowMode.fields.map((f) => f.name) });
  const multi = await c.query('SELECT 1 AS one; SELECT 2 AS two');
  check('a multi-statement simple query returns two results', [[{ one: 1 }], [{ two: 2 }]], multi.map((r) => r.rows));
  await c.end();
}

async function namedOnPool() {
  const pool = new Pool({ ...config, max: 5 });
  const byId = { name: 'item-by-id', text: 'SELECT id, name, price FROM n_items WHERE id = $1' };
  const sumRange = { name: 'sum-range', text: 'SELECT count(*)::int AS n, sum(id)::int AS s FROM n_items WHERE id BETWEEN $1 AND $2' };
  const wrong = [];
  const pids = new Set();
  for (let round = 0; round < 5; round++) {
    const jobs = [];
    for (let i = 0; i < 20; i++) {
      const id = 11 + ((round * 20 + i) % 80);
      jobs.push(pool.query({ ...byId, values: [id] }).then((r) => {
        const want = [{ id, name: `item-${id}`, price: (id * 0.5).toFixed(2) }];
        try {
          assert.deepStrictEqual(r.rows, want);
        } catch (e) {
          wrong.push(`round ${round} id ${id}: ${JSON.stringify(r.rows)}`);
        }
      }));
      jobs.push(pool.query({ ...sumRange, values: [id, id + 9] }).then((r) => {
        const want = { n: 10, s: 10 * id + 45 };
        if (r.rows.length !== 1 || r.rows[0].n !== want.n || r.rows[0].s !== want.s)
          wrong.push(`round ${round} range ${id}: ${JSON.stringify(r.rows)}`);
      }));
      jobs.push(pool.query({ name: 'backend-pid', text: 'SELECT pg_backend_pid() AS pid, $1::int AS i', values: [i] })
        .then((r) => { pids.add(r.rows[0].pid); if (r.rows[0].i !== i) wrong.push(`pid query ${i}`); }));
    }
    await Promise.all(jobs);
  }
  check('5 rounds x 20 concurrent x 3 named statements on a Pool of 5 all returned the right rows', [], wrong);
  check('the pool opened 5 clients', 5, pool.totalCount);
  check('named statements ran on more than one server process', true, pids.size > 1);

  // A named statement reused with a different text is refused by node-postgres itself, and a
  // named statement with a server error fails only that query.
  const err = await errorOf(pool.query({ name: 'div', text: 'SELECT 10 / $1::int AS q', values: [0] }));
  check('a named statement raising division by zero fails with 22012', '22012', err && err.code);
  const ok = await pool.query({ name: 'div', text: 'SELECT 10 / $1::int AS q', values: [5] });
  check('the same named statement works with another value', [{ q: 2 }], ok.rows);
  await pool.end();
}

async function transaction() {
  const pool = new Pool({ ...config, max: 3 });
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    await c.query('INSERT INTO n_items (id, name) VALUES ($1, $2)', [601, 'tx-row']);
    await c.query({ name: 'tx-upd', text: 'UPDATE n_items SET name = $1 WHERE id = $2', values: ['changed', 1] });
    const inside = await c.query('SELECT count(*)::int AS n FROM n_items WHERE id = 601 OR name = $1', ['changed']);
    check('the transaction sees its own writes', 2, inside.rows[0].n);
    // Other pool clients meanwhile use other server connections.
    const outside = await pool.query('SELECT count(*)::int AS n FROM n_items WHERE id = 601');
    check('another client does not see the uncommitted row', 0, outside.rows[0].n);
    await c.query('ROLLBACK');
    const after = await c.query('SELECT count(*)::int AS n, max(name) FILTER (WHERE id = 1) AS one FROM n_items WHERE id IN (1, 601)');
    check('ROLLBACK undid the insert and the update', [{ n: 1, one: 'item-1' }], after.rows);

    await c.query('BEGIN');
    await c.query('INSERT INTO n_items (id, name) VALUES ($1, $2)', [602, 'committed']);
    await c.query('COMMIT');
  } finally {
    c.release();
  }
  const seen = await pool.query('SELECT name FROM n_items WHERE id = $1', [602]);
  check('a committed transaction is visible to the pool', [{ name: 'committed' }], seen.rows);
  await pool.end();
}

async function errors() {
  const c = new Client(config);
  await c.connect();
  let err = await errorOf(c.query('SELECT * FROM no_such_table'));
  check('an unknown table fails with 42P01', '42P01', err && err.code);
  err = await errorOf(c.query('INSERT INTO n_items (id, name) VALUES ($1, $2)', [1, 'dup']));
  check('a duplicate key fails with 23505 and its detail', ['23505', 'Key (id)=(1) already exists.'],
    err && [err.code, err.detail]);
  const ok = await c.query('SELECT $1::int * 2 AS x', [21]);
  check('the client works after errors', [{ x: 42 }], ok.rows);

  await c.query('BEGIN');
  err = await errorOf(c.query('SELECT 1 / 0'));
  check('division by zero in a transaction fails with 22012', '22012', err && err.code);
  err = await errorOf(c.query('SELECT $1::int', [1]));
  check('the aborted transaction refuses statements with 25P02', '25P02', err && err.code);
  await c.query('ROLLBACK');
  const back = await c.query('SELECT name FROM n_items WHERE id = $1', [1]);
  check('after ROLLBACK the client works and data is unchanged', [{ name: 'item-1' }], back.rows);
  err = await errorOf(c.query('SELEC oops'));
  check('a syntax error fails with 42601 at position 1', ['42601', '1'], err && [err.code, err.position]);
  await c.end();

  const bad = new Client({ ...config, password: `${password}-wrong` });
  err = await errorOf(bad.connect());
  check('a wrong password fails with 28P01', '28P01', err && err.code);
  await bad.end().catch(() => {});
}

(async () => {
  await step('setup', setup);
  await step('parameterized queries', parameterized);
  await step('named statements on a pool', namedOnPool);
  await step('transaction', transaction);
  await step('errors', errors);
  console.log(`result: ${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
})();
