# ruby-pg (Debian's ruby-pg), unmodified, against one target (run by tests/clients/ruby_pg_test.sh).
# Targets as in driver_harness.py: direct (PostgreSQL itself: everything must pass), proxy-1shard,
# proxy-2shard (rb_items sharded by tenant_id).
#
# Usage: ruby ruby_pg_client.rb TARGET HOST PORT USER PASSWORD DATABASE S0_PORT S1_PORT
# Prints ok / FAIL / xfail lines and `result: N passed, M failed, K expected failures`.
require 'pg'
require 'timeout'

# Scenario -> the proxy bug it hits ("TARGET:scenario" for one target only). A listed scenario
# that passes is a failure, so fixed bugs get their entry removed.
KNOWN_FAILURES = {
}.freeze

TARGET, HOST, PORT, USER, PASSWORD, DATABASE, S0, S1 = ARGV
SHARD_PORTS = [S0.to_i, S1.to_i].freeze
SHARDED = TARGET == 'proxy-2shard'
SEED = Random.new_seed % (1 << 30)
RNG = Random.new(SEED)
puts "# ruby-pg #{PG::VERSION} (libpq #{PG.library_version}), target #{TARGET} on port #{PORT}, seed #{SEED}"

$passed = 0
$failed = 0
$xfailed = 0
$scenario = ''
$scenario_failures = 0

def known_bug(name)
  return nil if TARGET == 'direct'
  KNOWN_FAILURES["#{TARGET}:#{name}"] || KNOWN_FAILURES[name]
end

def report(text)
  $scenario_failures += 1
  if known_bug($scenario)
    $xfailed += 1
    puts "xfail - [#{TARGET}] #{$scenario}: #{text}"
  else
    $failed += 1
    puts "FAIL - [#{TARGET}] #{$scenario}: #{text}"
  end
end

def check(name, expected, actual)
  if expected == actual
    $passed += 1
    puts "ok   - [#{TARGET}] #{$scenario}: #{name}"
  else
    report("#{name}\n       expected: #{expected.inspect}\n       actual:   #{actual.inspect}")
  end
end

def run(name, seconds = 20)
  $scenario = name
  $scenario_failures = 0
  begin
    Timeout.timeout(seconds) { yield }
  rescue Timeout::Error
    report("no answer within #{seconds} s")
  rescue StandardError => e
    state = e.respond_to?(:result) && e.result ? " [SQLSTATE #{e.result.error_field(PG::PG_DIAG_SQLSTATE)}]" : ''
    report("raised #{e.class}#{state}: #{e.message.strip}")
  end
  bug = known_bug(name)
  if bug && $scenario_failures.zero?
    $failed += 1
    puts "FAIL - [#{TARGET}] #{name}: passed, but KNOWN_FAILURES lists it (#{bug}); remove it from the list"
  elsif bug
    puts "# [#{TARGET}] #{name}: expected failure: #{bug}"
  end
end

def connect(port: PORT, dbname: DATABASE)
  c = PG.connect(host: HOST, port: port, user: USER, password: PASSWORD, dbname: dbname, connect_timeout: 10)
  c.set_notice_receiver { |_| nil } # DROP TABLE IF EXISTS notices
  c
end

def count(where, params = [])
  c = connect
  c.exec_params("SELECT count(*) FROM rb_items WHERE #{where}", params).getvalue(0, 0).to_i
ensure
  c&.close
end

tenants = (Array.new(12) { 1 + RNG.rand(9999) } + Array.new(12) { (1 << 33) + RNG.rand(1 << 36) }).uniq
# tenant -> shard index, from PostgreSQL's own hash (SPEC 4); s0 holds logical 0-511.
d = connect(port: SHARD_PORTS[0], dbname: 'app')
d.exec('CREATE TEMP TABLE placement_oracle (k bigint) PARTITION BY HASH (k)')
HOME = d.exec_params("SELECT k, r FROM unnest($1::bigint[]) k, generate_series(0, 1023) r " \
                     "WHERE satisfies_hash_partition('placement_oracle'::regclass, 1024, r, k)",
                     [PG::TextEncoder::Array.new.encode(tenants)]).to_h { |r| [r['k'].to_i, r['r'].to_i <= 511 ? 0 : 1] }
d.close
TENANTS = tenants.sort_by { |t| HOME[t] == 0 ? 1 : 0 } # tenants off the home shard first

run('setup') do
  c = connect
  c.exec('DROP TABLE IF EXISTS rb_items')
  c.exec('DROP TABLE IF EXISTS rb_log')
  c.exec('CREATE TABLE rb_items (tenant_id bigint, id int, name text NOT NULL, qty int, PRIMARY KEY (tenant_id, id))')
  c.exec('CREATE TABLE rb_log (id int PRIMARY KEY, note text)')
  if SHARDED
    # The proxy learns a new table's key type after its CREATE; wait for it here (the asyncpg
    # test checks what happens before).
    port = nil
    100.times do
      port = c.exec_params('SELECT inet_server_port(), count(*) FROM rb_items WHERE tenant_id = $1',
                           [TENANTS[0]]).getvalue(0, 0).to_i
      break if port == SHARD_PORTS[1]
      sleep 0.1
    end
    check('the proxy routes rb_items by tenant_id within 10 s of its CREATE', SHARD_PORTS[1], port)
  end
  TENANTS.each do |t|
    (1..20).each do |i|
      c.exec_params('INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, $2, $3, $4)', [t, i, "n-#{t}-#{i}", i])
    end
  end
  check('20 rows per tenant', TENANTS.map { 20 }, TENANTS.map { |t| count('tenant_id = $1', [t]) })
  c.close
end

run('prepared_statements') do
  c = connect
  c.prepare('by_key', 'SELECT name, qty FROM rb_items WHERE tenant_id = $1 AND id = $2')
  wrong = []
  100.times do
    t = TENANTS[RNG.rand(TENANTS.size)]
    i = 1 + RNG.rand(20)
    row = c.exec_prepared('by_key', [t, i]).values
    wrong << [[t, i], row] unless row == [["n-#{t}-#{i}", i.to_s]]
  end
  check('100 exec_prepared calls return their tenant\'s row', [], wrong.first(3))
  c.exec('DEALLOCATE by_key')
  err = begin
    c.exec_prepared('by_key', [TENANTS[0], 1])
    nil
  rescue PG::InvalidSqlStatementName => e
    e.result.error_field(PG::PG_DIAG_SQLSTATE)
  end
  check('after DEALLOCATE the statement is gone (26000)', '26000', err)
  c.close
end

run('transactions') do
  t = TENANTS[1]
  c = connect
  begin
    c.transaction do |tx|
      tx.exec_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 100, 'undone', 0)", [t])
      check('another connection does not see the uncommitted row', 0, count('tenant_id = $1 AND id = 100', [t]))
      raise 'undo'
    end
  rescue RuntimeError
    nil
  end
  check('after the rollback nobody sees the row', 0, count('tenant_id = $1 AND id = 100', [t]))
  check('the connection is idle', PG::PQTRANS_IDLE, c.transaction_status)
  c.transaction do |tx|
    tx.exec_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 101, 'kept', 0)", [t])
    tx.exec('SAVEPOINT sp')
    tx.exec_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 102, 'undone', 0)", [t])
    tx.exec('ROLLBACK TO SAVEPOINT sp')
    tx.exec_params("UPDATE rb_items SET qty = 77 WHERE tenant_id = $1 AND id = 1", [t])
    check('inside: the transaction status is INTRANS', PG::PQTRANS_INTRANS, tx.transaction_status)
  end
  check('the commit kept the savepoint\'s outer writes only', [1, 0, 1],
        [count('tenant_id = $1 AND id = 101', [t]), count('tenant_id = $1 AND id = 102', [t]),
         count('tenant_id = $1 AND id = 1 AND qty = 77', [t])])
  err = begin
    c.exec_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 1, 'dup', 0)", [t])
  rescue PG::UniqueViolation => e
    e.result.error_field(PG::PG_DIAG_SQLSTATE)
  end
  check('a duplicate key raises PG::UniqueViolation (23505)', '23505', err)
  check('the connection works after the error', [['1']], c.exec('SELECT 1').values)
  c.close
end

run('isolation') do
  t = TENANTS[2]
  c = connect
  c.exec('BEGIN ISOLATION LEVEL REPEATABLE READ')
  before = c.exec_params('SELECT count(*) FROM rb_items WHERE tenant_id = $1', [t]).getvalue(0, 0).to_i
  check('the server reports repeatable read', 'repeatable read', c.exec('SHOW transaction_isolation').getvalue(0, 0))
  o = connect
  o.exec_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 300, 'concurrent', 0)", [t])
  o.close
  check('a concurrent commit stays invisible', before,
        c.exec_params('SELECT count(*) FROM rb_items WHERE tenant_id = $1', [t]).getvalue(0, 0).to_i)
  c.exec('COMMIT')
  check('after the commit it is visible', before + 1, count('tenant_id = $1', [t]))
  c.close
end

run('copy') do
  c = connect
  c.copy_data('COPY rb_log (id, note) FROM STDIN') do
    (1..2000).each { |i| c.put_copy_data("#{i}\tnote #{i}\n") }
  end
  check('COPY FROM STDIN stored 2000 rows', [%w[2000 2001000]], c.exec('SELECT count(*), sum(id) FROM rb_log').values)
  lines = []
  c.copy_data('COPY (SELECT id, note FROM rb_log ORDER BY id) TO STDOUT') do
    while (line = c.get_copy_data)
      lines << line
    end
  end
  check('COPY TO STDOUT returned every row in order', (1..2000).map { |i| "#{i}\tnote #{i}\n" }, lines)
  rows = TENANTS.flat_map { |t| (1..5).map { |i| "#{t}\t#{500 + i}\tcopied\t0\n" } }
  c.copy_data('COPY rb_items (tenant_id, id, name, qty) FROM STDIN') { rows.each { |r| c.put_copy_data(r) } }
  check('COPY FROM into rb_items: each tenant finds its 5 rows', TENANTS.map { 5 },
        TENANTS.map { |t| count("tenant_id = $1 AND name = 'copied'", [t]) })
  c.close
end

run('single_row_mode') do
  t = TENANTS[3]
  c = connect
  c.send_query_params('SELECT id FROM rb_items WHERE tenant_id = $1 AND id <= 20 ORDER BY id', [t])
  c.set_single_row_mode
  ids = []
  while (res = c.get_result)
    res.check
    res.each { |r| ids << r['id'].to_i }
  end
  check('single-row mode streamed the tenant\'s 20 rows', (1..20).to_a, ids)
  c.close
end

run('pipeline') do
  t = TENANTS[4]
  c = connect
  c.enter_pipeline_mode
  c.send_query_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 600, 'piped', 0)", [t])
  c.pipeline_sync
  c.send_query_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 601, 'undone', 0)", [t])
  c.send_query_params("INSERT INTO rb_items (tenant_id, id, name, qty) VALUES ($1, 1, 'dup', 0)", [t])
  c.pipeline_sync
  c.send_query_params('SELECT count(*) FROM rb_items WHERE tenant_id = $1 AND id IN (600, 601)', [t])
  c.pipeline_sync
  statuses = []
  count_piped = nil
  while statuses.count(PG::PGRES_PIPELINE_SYNC) < 3 && statuses.size < 20
    r = c.get_result
    statuses << (r ? r.result_status : nil)
    count_piped = r.getvalue(0, 0) if r && r.result_status == PG::PGRES_TUPLES_OK
  end
  c.exit_pipeline_mode
  check('pipeline results: ok, sync; ok, error, sync; rows, sync',
        [PG::PGRES_COMMAND_OK, nil, PG::PGRES_PIPELINE_SYNC, PG::PGRES_COMMAND_OK, nil, PG::PGRES_FATAL_ERROR, nil,
         PG::PGRES_PIPELINE_SYNC, PG::PGRES_TUPLES_OK, nil, PG::PGRES_PIPELINE_SYNC],
        statuses)
  check('the read in the pipeline sees the first sync point\'s row only', '1', count_piped)
  check('the failed sync point left nothing, the first did', 1, count('tenant_id = $1 AND id IN (600, 601)', [t]))
  c.close
end

puts "result: #{$passed} passed, #{$failed} failed, #{$xfailed} expected failures"
exit($failed.zero? ? 0 : 1)
