// pgJDBC, unmodified, doing tenant CRUD with bound parameters through a proxy that shards accounts
// and notes by tenant_id over two shards (run by tests/clients/jdbc_sharded_test.sh).
//
// Usage: java -cp /usr/share/java/postgresql.jar JdbcShardedClient.java HOST PORT USER PASSWORD DATABASE DIRECTORY S0_PORT S1_PORT
// DIRECTORY is the proxy's directory as `first-last=shard,...` (from SHOW DIRECTORY); S0_PORT and
// S1_PORT are the primaries of s0 and s1, which the client also reaches directly to see where each
// tenant's rows really are. Where a tenant must live is computed by PostgreSQL itself (SPEC
// section 4: the hash partition remainder for MODULUS 1024, checked with satisfies_hash_partition).
// Prints `ok - ...` / `FAIL - ...` per check and ends with `result: N passed, M failed`.

import java.math.BigDecimal;
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.postgresql.PGStatement;

public class JdbcShardedClient {
  static String host;
  static String url;
  static String user;
  static String password;
  static String database;
  static final Properties props = new Properties();
  static final List<long[]> directory = new ArrayList<>(); // {first, last, shard index}
  static final int[] shardPorts = new int[2];
  static final String[] shards = {"s0", "s1"};
  static int passed = 0;
  static int failed = 0;

  // 200 tenants: 100 small keys and 100 past the int4 range (bigint hashing differs there).
  static final List<Long> tenants = new ArrayList<>();
  // What the client wrote and committed: tenant -> id -> "name|balance", tenant -> id -> body.
  static final Map<Long, TreeMap<Long, String>> accounts = new HashMap<>();
  static final Map<Long, TreeMap<Long, String>> notes = new HashMap<>();
  static final Map<Long, Integer> home = new LinkedHashMap<>(); // tenant -> shard index

  static void check(String name, Object expected, Object actual) {
    if (Objects.deepEquals(expected, actual)) {
      passed++;
      System.out.println("ok   - " + name);
    } else {
      failed++;
      System.out.println("FAIL - " + name + "\n       expected: " + show(expected) + "\n       actual:   " + show(actual));
    }
  }

  static String show(Object o) {
    if (o instanceof int[]) return Arrays.toString((int[]) o);
    if (o instanceof Object[]) return Arrays.deepToString((Object[]) o);
    return String.valueOf(o);
  }

  /** The first five of a list of problems, so a failure message stays readable. */
  static List<String> first(List<String> problems) {
    if (problems.size() <= 5) return problems;
    List<String> l = new ArrayList<>(problems.subList(0, 5));
    l.add("... " + (problems.size() - 5) + " more");
    return l;
  }

  interface Step {
    void run() throws Exception;
  }

  static final long startNanos = System.nanoTime();

  /** Runs one group of checks; an unexpected exception is a failure, not a crash. */
  static void step(String name, Step s) {
    if (System.nanoTime() - startNanos > TimeUnit.SECONDS.toNanos(50)) {
      failed++;
      System.out.println("FAIL - " + name + " skipped: the 50 s time budget is spent");
      return;
    }
    try {
      s.run();
    } catch (Exception e) {
      failed++;
      String state = e instanceof SQLException ? " [SQLSTATE " + ((SQLException) e).getSQLState() + "]" : "";
      System.out.println("FAIL - " + name + " threw " + e.getClass().getSimpleName() + state + ": " + e.getMessage());
    }
  }

  static Connection connect() throws SQLException {
    return DriverManager.getConnection(url, props);
  }

  /** A connection in the simple query protocol, for a fallback after a failed extended-protocol check. */
  static Connection connectSimple() throws SQLException {
    Properties simple = new Properties();
    simple.putAll(props);
    simple.setProperty("preferQueryMode", "simple");
    return DriverManager.getConnection(url, simple);
  }

  /** "none", or the SQLSTATE and message of what the action threw. */
  static String errorOf(Step action) throws Exception {
    try {
      action.run();
      return "none";
    } catch (SQLException e) {
      return "[" + e.getSQLState() + "] " + e.getMessage();
    }
  }

  static Connection connectDirect(int shard) throws SQLException {
    return DriverManager.getConnection("jdbc:postgresql://" + host + ":" + shardPorts[shard] + "/" + database, props);
  }

  static String money(BigDecimal b) {
    return b.stripTrailingZeros().toPlainString();
  }

  static List<Long> on(int shard, int n) {
    List<Long> l = new ArrayList<>();
    for (long t : tenants) {
      if (home.get(t) == shard && l.size() < n) l.add(t);
    }
    return l;
  }

  static boolean serverPrepared(PreparedStatement ps) throws SQLException {
    return ps.unwrap(PGStatement.class).isUseServerPrepare();
  }

  static TreeMap<Long, String> read(PreparedStatement ps, long tenant, boolean withBalance) throws SQLException {
    ps.setLong(1, tenant);
    TreeMap<Long, String> m = new TreeMap<>();
    try (ResultSet rs = ps.executeQuery()) {
      while (rs.next()) m.put(rs.getLong(1), withBalance ? rs.getString(2) + "|" + money(rs.getBigDecimal(3)) : rs.getString(2));
    }
    return m;
  }

  static final String kSelectAccounts = "SELECT id, name, balance FROM accounts WHERE tenant_id = ? ORDER BY id";
  static final String kSelectNotes = "SELECT id, body FROM notes WHERE tenant_id = ? ORDER BY id";

  /** Tenants (of the given ones) whose rows read through the proxy differ from what was written. */
  static List<String> readBackProblems(Connection c, List<Long> which) throws SQLException {
    List<String> bad = new ArrayList<>();
    try (PreparedStatement sa = c.prepareStatement(kSelectAccounts); PreparedStatement sn = c.prepareStatement(kSelectNotes)) {
      for (long t : which) {
        TreeMap<Long, String> a = read(sa, t, true);
        TreeMap<Long, String> n = read(sn, t, false);
        if (!a.equals(accounts.get(t))) bad.add("tenant " + t + " accounts " + a + " want " + accounts.get(t));
        if (!n.equals(notes.get(t))) bad.add("tenant " + t + " notes " + n + " want " + notes.get(t));
      }
    }
    return bad;
  }

  public static void main(String[] args) throws Exception {
    host = args[0];
    user = args[2];
    password = args[3];
    database = args[4];
    url = "jdbc:postgresql://" + host + ":" + args[1] + "/" + database;
    props.setProperty("user", user);
    props.setProperty("password", password);
    props.setProperty("ApplicationName", "jdbc-sharded-test");
    props.setProperty("connectTimeout", "10");
    // A statement that gets no answer fails after 15 s instead of hanging the test.
    props.setProperty("socketTimeout", "15");
    for (String range : args[5].split(",")) {
      String[] kv = range.split("=");
      String[] fl = kv[0].split("-");
      directory.add(new long[] {Long.parseLong(fl[0]), Long.parseLong(fl[1]), Arrays.asList(shards).indexOf(kv[1])});
    }
    shardPorts[0] = Integer.parseInt(args[6]);
    shardPorts[1] = Integer.parseInt(args[7]);
    for (long i = 1; i <= 100; i++) tenants.add(i);
    for (long i = 0; i < 100; i++) tenants.add(10_000_000_000L + i * 7_919_777L);
    for (long t : tenants) {
      accounts.put(t, new TreeMap<>());
      notes.put(t, new TreeMap<>());
    }

    step("setup", JdbcShardedClient::setup);
    if (home.size() != tenants.size()) {
      failed++;
      System.out.println("FAIL - setup did not place the tenants; the remaining groups cannot run");
    } else {
      step("CRUD with autocommit on", JdbcShardedClient::crud);
      step("prepared statements across shards", JdbcShardedClient::preparedAcrossShards);
      step("a transaction per tenant", JdbcShardedClient::transactions);
      step("batches", JdbcShardedClient::batches);
      step("cross-shard transaction", JdbcShardedClient::crossShard);
      step("reference table", JdbcShardedClient::referenceTable);
      step("hints", JdbcShardedClient::hints);
      step("placement on the shards", JdbcShardedClient::placement);
    }
    System.out.println("result: " + passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }

  static void createTables(Connection c) throws SQLException {
    try (Statement s = c.createStatement()) {
      for (String table : new String[] {"notes", "accounts", "plans"}) s.execute("DROP TABLE IF EXISTS " + table);
      s.execute("CREATE TABLE accounts (tenant_id bigint, id bigint, name text, balance numeric, PRIMARY KEY (tenant_id, id))");
      s.execute("CREATE TABLE notes (tenant_id bigint, id bigint, body text)");
      s.execute("CREATE TABLE plans (id int PRIMARY KEY, name text)");
    }
  }

  static void setup() throws Exception {
    // pgJDBC sends Statement.execute through the extended protocol too (preferQueryMode=extended).
    String error = errorOf(() -> {
      try (Connection c = connect()) {
        createTables(c);
      }
    });
    check("DDL (DROP/CREATE TABLE) through the proxy with pgJDBC's default extended protocol", "none", error);
    if (!error.equals("none")) {
      // So that the other groups still run: the same DDL in the simple query protocol.
      System.out.println("# retrying the DDL with preferQueryMode=simple so the remaining checks can run");
      try (Connection c = connectSimple()) {
        createTables(c);
      }
    }
    for (int shard = 0; shard < 2; shard++) {
      try (Connection d = connectDirect(shard); Statement s = d.createStatement();
           ResultSet rs = s.executeQuery("SELECT string_agg(table_name || '.' || column_name || ':' || data_type, ' ' "
               + "ORDER BY table_name, ordinal_position) FROM information_schema.columns "
               + "WHERE table_schema = 'public' AND table_name IN ('accounts', 'notes', 'plans')")) {
        rs.next();
        check("DDL through the proxy created the three tables on " + shards[shard],
            "accounts.tenant_id:bigint accounts.id:bigint accounts.name:text accounts.balance:numeric "
                + "notes.tenant_id:bigint notes.id:bigint notes.body:text plans.id:integer plans.name:text",
            rs.getString(1));
      }
    }
    // Where each tenant belongs, according to PostgreSQL: the remainder of hashint8extended with
    // the partition seed (hash_combine64(0, h) adds 0x49a0f4dd15e5a8e3, whose low 10 bits are
    // 227), confirmed by satisfies_hash_partition on a hash-partitioned temp table.
    try (Connection d = connectDirect(0); Statement s = d.createStatement()) {
      s.execute("CREATE TEMP TABLE tenant_oracle (tenant_id bigint) PARTITION BY HASH (tenant_id)");
      List<String> disagree = new ArrayList<>();
      try (PreparedStatement ps = d.prepareStatement(
          "SELECT t, r, satisfies_hash_partition('tenant_oracle'::regclass, 1024, r, t) FROM "
              + "(SELECT t, (((hashint8extended(t, 8816678312871386365) & 1023) + 227) & 1023)::int AS r "
              + "FROM unnest(?::bigint[]) t) x")) {
        ps.setArray(1, d.createArrayOf("bigint", tenants.toArray()));
        try (ResultSet rs = ps.executeQuery()) {
          while (rs.next()) {
            long t = rs.getLong(1);
            int r = rs.getInt(2);
            if (!rs.getBoolean(3)) disagree.add(Long.toString(t));
            for (long[] range : directory) {
              if (range[0] <= r && r <= range[1]) home.put(t, (int) range[2]);
            }
          }
        }
      }
      check("satisfies_hash_partition agrees with the computed remainder for all 200 tenants", List.of(), first(disagree));
    }
    check("the directory places all 200 tenants on s0 or s1", tenants.size(),
        (int) home.values().stream().filter(s -> s == 0 || s == 1).count());
    check("the 200 tenants fall on both shards", Set.of(0, 1), new TreeSet<>(home.values()));
    System.out.println("# tenants per shard: s0 " + on(0, 1000).size() + ", s1 " + on(1, 1000).size());
  }

  static void crud() throws SQLException {
    try (Connection c = connect();
         PreparedStatement ins = c.prepareStatement("INSERT INTO accounts (tenant_id, id, name, balance) VALUES (?, ?, ?, ?)");
         PreparedStatement insNote = c.prepareStatement("INSERT INTO notes (tenant_id, id, body) VALUES (?, 1, ?), (?, 2, ?) RETURNING id, tenant_id");
         PreparedStatement sel = c.prepareStatement(kSelectAccounts)) {
      check("autocommit is on by default", true, c.getAutoCommit());
      List<String> bad = new ArrayList<>();
      for (long t : tenants) {
        for (long i = 1; i <= 3; i++) {
          String name = "acct " + t + "/" + i + " O'Brien \u00e9\u4e2d";
          BigDecimal bal = new BigDecimal(i * 10 + ".25");
          ins.setLong(1, t);
          ins.setLong(2, i);
          ins.setString(3, name);
          ins.setBigDecimal(4, bal);
          int n = ins.executeUpdate();
          if (n != 1) bad.add("tenant " + t + " id " + i + ": update count " + n);
          accounts.get(t).put(i, name + "|" + money(bal));
        }
        insNote.setLong(1, t);
        insNote.setString(2, "note 1 of " + t);
        insNote.setLong(3, t);
        insNote.setString(4, "note 2 of " + t + "; -- not a comment");
        StringBuilder got = new StringBuilder();
        try (ResultSet rs = insNote.executeQuery()) {
          while (rs.next()) got.append(rs.getLong(1)).append(':').append(rs.getLong(2)).append(' ');
        }
        if (!got.toString().equals("1:" + t + " 2:" + t + " ")) bad.add("tenant " + t + ": RETURNING " + got);
        notes.get(t).put(1L, "note 1 of " + t);
        notes.get(t).put(2L, "note 2 of " + t + "; -- not a comment");
      }
      check("INSERT with bound parameters: 3 accounts and 2 notes (RETURNING) for each of 200 tenants", List.of(), first(bad));
      check("the INSERT PreparedStatement (600 executions) is a named server statement", true, serverPrepared(ins));

      bad.clear();
      for (long t : tenants) {
        TreeMap<Long, String> got = read(sel, t, true);
        if (!got.equals(accounts.get(t))) bad.add("tenant " + t + ": " + got);
      }
      check("SELECT ... WHERE tenant_id = ? returns exactly each tenant's 3 accounts", List.of(), first(bad));
      check("the SELECT PreparedStatement (200 executions) is a named server statement", true, serverPrepared(sel));

      bad.clear();
      try (PreparedStatement upd = c.prepareStatement("UPDATE accounts SET balance = balance + ? WHERE tenant_id = ?");
           PreparedStatement ren = c.prepareStatement("UPDATE accounts SET name = ? WHERE tenant_id = ? AND id = ? RETURNING balance")) {
        int k = 0;
        for (long t : tenants) {
          BigDecimal delta = new BigDecimal(k++ + ".5");
          upd.setBigDecimal(1, delta);
          upd.setLong(2, t);
          int n = upd.executeUpdate();
          if (n != 3) bad.add("tenant " + t + ": UPDATE by tenant count " + n);
          for (Map.Entry<Long, String> e : accounts.get(t).entrySet()) {
            String[] nb = e.getValue().split("\\|");
            e.setValue(nb[0] + "|" + money(new BigDecimal(nb[1]).add(delta)));
          }
          ren.setString(1, "renamed " + t);
          ren.setLong(2, t);
          ren.setLong(3, 2);
          String want = accounts.get(t).get(2L).split("\\|")[1];
          try (ResultSet rs = ren.executeQuery()) {
            String got = rs.next() ? money(rs.getBigDecimal(1)) : "no row";
            if (!got.equals(want) || rs.next()) bad.add("tenant " + t + ": RETURNING " + got + " want " + want);
          }
          accounts.get(t).put(2L, "renamed " + t + "|" + want);
        }
      }
      check("UPDATE by tenant (3 rows each) and by tenant and id with RETURNING", List.of(), first(bad));

      bad.clear();
      try (PreparedStatement del = c.prepareStatement("DELETE FROM accounts WHERE tenant_id = ? AND id = ?");
           PreparedStatement delNote = c.prepareStatement("DELETE FROM notes WHERE tenant_id = ? AND id = 2")) {
        int k = 0;
        for (long t : tenants) {
          del.setLong(1, t);
          del.setLong(2, 3);
          int n = del.executeUpdate();
          if (n != 1) bad.add("tenant " + t + ": DELETE account count " + n);
          accounts.get(t).remove(3L);
          if (k++ % 2 == 0) {
            delNote.setLong(1, t);
            n = delNote.executeUpdate();
            if (n != 1) bad.add("tenant " + t + ": DELETE note count " + n);
            notes.get(t).remove(2L);
          }
        }
      }
      check("DELETE by tenant removes exactly one row each", List.of(), first(bad));
      check("after UPDATE and DELETE each tenant reads back exactly its rows", List.of(), first(readBackProblems(c, tenants)));
    }
  }

  /**
   * One PreparedStatement executed 12 times, alternating tenants of s0 and s1: from the 5th
   * execution on pgJDBC only binds its named server statement, which the proxy must have on
   * whichever shard the tenant is on. inet_server_port() shows the shard that answered.
   */
  static void preparedAcrossShards() throws SQLException {
    List<Long> a = on(0, 6);
    List<Long> b = on(1, 6);
    for (boolean autocommit : new boolean[] {true, false}) {
      String mode = autocommit ? "autocommit on" : "autocommit off";
      try (Connection c = connect();
           PreparedStatement ps = c.prepareStatement("SELECT inet_server_port(), count(*), sum(balance) FROM accounts WHERE tenant_id = ?")) {
        c.setAutoCommit(autocommit);
        check("pgJDBC's default prepareThreshold is 5", 5, ps.unwrap(PGStatement.class).getPrepareThreshold());
        List<String> bad = new ArrayList<>();
        boolean unnamedFirst = false;
        for (int i = 0; i < 12; i++) {
          long t = (i % 2 == 0 ? a : b).get(i / 2);
          ps.setLong(1, t);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            BigDecimal sum = BigDecimal.ZERO;
            for (String v : accounts.get(t).values()) sum = sum.add(new BigDecimal(v.split("\\|")[1]));
            String got = rs.getInt(1) + " " + rs.getLong(2) + " " + money(rs.getBigDecimal(3));
            String want = shardPorts[home.get(t)] + " " + accounts.get(t).size() + " " + money(sum);
            if (!got.equals(want)) bad.add("execution " + (i + 1) + " tenant " + t + ": got " + got + " want " + want);
          }
          if (!autocommit) c.commit();
          if (i == 2) unnamedFirst = !serverPrepared(ps);
        }
        check(mode + ": before the threshold the statement is not server-prepared", true, unnamedFirst);
        check(mode + ": after 12 executions it is a named server statement", true, serverPrepared(ps));
        check(mode + ": all 12 executions, alternating shards, ran on the tenant's shard with its rows", List.of(), bad);
      }
    }
  }

  static void transactions() throws SQLException {
    List<String> bad = new ArrayList<>();
    int committed = 0;
    int rolledBack = 0;
    try (Connection c = connect();
         PreparedStatement sel = c.prepareStatement(kSelectAccounts);
         PreparedStatement upd = c.prepareStatement("UPDATE accounts SET balance = balance - ? WHERE tenant_id = ? AND id = ?");
         PreparedStatement ins = c.prepareStatement("INSERT INTO notes (tenant_id, id, body) VALUES (?, ?, ?)");
         PreparedStatement cnt = c.prepareStatement("SELECT count(*) FROM notes WHERE tenant_id = ?")) {
      c.setAutoCommit(false);
      int k = 0;
      for (long t : tenants) {
        int n = k++;
        if (n % 2 == 0) {
          // A read first: the transaction is bound to the tenant's shard from the SELECT on.
          TreeMap<Long, String> before = read(sel, t, true);
          if (!before.equals(accounts.get(t))) bad.add("tenant " + t + ": read in transaction " + before);
        }
        upd.setBigDecimal(1, new BigDecimal("1.25"));
        upd.setLong(2, t);
        upd.setLong(3, 1);
        if (upd.executeUpdate() != 1) bad.add("tenant " + t + ": UPDATE in transaction changed no row");
        ins.setLong(1, t);
        ins.setLong(2, 100 + n);
        ins.setString(3, "txn " + n);
        ins.executeUpdate();
        cnt.setLong(1, t);
        try (ResultSet rs = cnt.executeQuery()) {
          rs.next();
          if (rs.getInt(1) != notes.get(t).size() + 1)
            bad.add("tenant " + t + ": the transaction sees " + rs.getInt(1) + " notes, want " + (notes.get(t).size() + 1));
        }
        if (n % 3 == 2) {
          c.rollback();
          rolledBack++;
        } else {
          c.commit();
          committed++;
          String[] nb = accounts.get(t).get(1L).split("\\|");
          accounts.get(t).put(1L, nb[0] + "|" + money(new BigDecimal(nb[1]).subtract(new BigDecimal("1.25"))));
          notes.get(t).put(100L + n, "txn " + n);
        }
      }
      check("a transaction per tenant on accounts and notes (" + committed + " committed, " + rolledBack + " rolled back)",
          List.of(), first(bad));
      check("the transaction's UPDATE statement is a named server statement", true, serverPrepared(upd));
      c.setAutoCommit(true);
      check("committed transactions stayed, rolled back ones left nothing", List.of(), first(readBackProblems(c, tenants)));
    }
  }

  static void batches() throws SQLException {
    List<Long> which = new ArrayList<>(on(0, 10));
    which.addAll(on(1, 10));
    List<String> bad = new ArrayList<>();
    try (Connection c = connect();
         PreparedStatement ins = c.prepareStatement("INSERT INTO accounts (tenant_id, id, name, balance) VALUES (?, ?, ?, ?)");
         PreparedStatement insNote = c.prepareStatement("INSERT INTO notes (tenant_id, id, body) VALUES (?, ?, ?)")) {
      c.setAutoCommit(false);
      for (long t : which) {
        for (long i = 10; i < 20; i++) {
          ins.setLong(1, t);
          ins.setLong(2, i);
          ins.setString(3, "bulk " + t + "/" + i);
          ins.setBigDecimal(4, new BigDecimal(i).divide(new BigDecimal(4)));
          ins.addBatch();
        }
        int[] counts = ins.executeBatch();
        int[] ones = new int[10];
        Arrays.fill(ones, 1);
        if (!Arrays.equals(ones, counts)) bad.add("tenant " + t + ": batch counts " + Arrays.toString(counts));
        c.commit();
        for (long i = 10; i < 20; i++)
          accounts.get(t).put(i, "bulk " + t + "/" + i + "|" + money(new BigDecimal(i).divide(new BigDecimal(4))));
      }
      check("a 10-row batch of one tenant per transaction, autocommit off, 10 tenants on each shard", List.of(), first(bad));

      c.setAutoCommit(true);
      bad.clear();
      for (long t : which) {
        for (long i = 10; i < 15; i++) {
          insNote.setLong(1, t);
          insNote.setLong(2, i);
          insNote.setString(3, "bulk note " + i);
          insNote.addBatch();
        }
        int[] counts = insNote.executeBatch();
        if (!Arrays.equals(new int[] {1, 1, 1, 1, 1}, counts)) bad.add("tenant " + t + ": batch counts " + Arrays.toString(counts));
        for (long i = 10; i < 15; i++) notes.get(t).put(i, "bulk note " + i);
      }
      check("a 5-row batch of one tenant, autocommit on, 20 tenants on both shards", List.of(), first(bad));
    }

    // reWriteBatchedInserts: pgJDBC turns the batch into multi-row INSERTs of one tenant.
    Properties rewrite = new Properties();
    rewrite.putAll(props);
    rewrite.setProperty("reWriteBatchedInserts", "true");
    try (Connection c = DriverManager.getConnection(url, rewrite);
         PreparedStatement ins = c.prepareStatement("INSERT INTO accounts (tenant_id, id, name, balance) VALUES (?, ?, ?, ?)")) {
      c.setAutoCommit(false);
      for (long t : new long[] {on(0, 1).get(0), on(1, 1).get(0)}) {
        for (long i = 30; i < 60; i++) {
          ins.setLong(1, t);
          ins.setLong(2, i);
          ins.setString(3, "rewritten " + t + "/" + i);
          ins.setBigDecimal(4, new BigDecimal(i));
          ins.addBatch();
        }
        int[] counts = ins.executeBatch();
        c.commit();
        check("a rewritten 30-row batch of tenant " + t + " (" + shards[home.get(t)] + ") reports 30 rows",
            30L, Arrays.stream(counts).mapToLong(n -> n == Statement.SUCCESS_NO_INFO ? 1 : n).sum());
        for (long i = 30; i < 60; i++) accounts.get(t).put(i, "rewritten " + t + "/" + i + "|" + i);
      }
    }
    try (Connection c = connect()) {
      List<Long> all = new ArrayList<>(which);
      check("the batch-loaded tenants read back exactly their rows", List.of(), first(readBackProblems(c, all)));
    }
  }

  static void crossShard() throws SQLException {
    long a = on(0, 1).get(0);
    long b = on(1, 1).get(0);
    try (Connection c = connect();
         PreparedStatement ins = c.prepareStatement("INSERT INTO notes (tenant_id, id, body) VALUES (?, 900, ?)");
         PreparedStatement upd = c.prepareStatement("UPDATE accounts SET balance = balance + 1000 WHERE tenant_id = ?")) {
      c.setAutoCommit(false);
      ins.setLong(1, a);
      ins.setString(2, "cross a");
      check("the first tenant's INSERT (s0) in the transaction succeeds", 1, ins.executeUpdate());
      ins.setLong(1, b);
      ins.setString(2, "cross b");
      String state = "no error";
      String message = "";
      try {
        ins.executeUpdate();
      } catch (SQLException e) {
        state = e.getSQLState();
        message = String.valueOf(e.getMessage());
      }
      check("a second tenant's INSERT on the other shard in one transaction fails with 0A000", "0A000", state);
      check("the error names both shards (" + message + ")", true, message.contains("s0") && message.contains("s1"));
      c.rollback();

      // Other way round, with a PreparedStatement past the threshold: the first 6 executions
      // alternate shards in their own transactions, the 7th and 8th share one.
      for (int i = 0; i < 6; i++) {
        upd.setLong(1, i % 2 == 0 ? a : b);
        upd.executeUpdate();
        c.rollback();
      }
      check("the UPDATE is a named server statement now", true, serverPrepared(upd));
      upd.setLong(1, b);
      check("the first UPDATE (s1) in the transaction succeeds", accounts.get(b).size(), upd.executeUpdate());
      upd.setLong(1, a);
      state = "no error";
      try {
        upd.executeUpdate();
      } catch (SQLException e) {
        state = e.getSQLState();
      }
      check("an UPDATE of a tenant on the other shard in the same transaction fails with 0A000", "0A000", state);
      // COMMIT, not ROLLBACK: PostgreSQL turns COMMIT of a failed transaction into ROLLBACK (whether
      // pgJDBC then raises depends on its version); what counts is that nothing was committed.
      try {
        c.commit();
      } catch (SQLException e) {
        System.out.println("# COMMIT of the failed transaction: [" + e.getSQLState() + "] " + e.getMessage());
      }

      try (PreparedStatement cnt = c.prepareStatement("SELECT count(*) FROM notes WHERE tenant_id = ?")) {
        for (long t : new long[] {a, b}) {
          cnt.setLong(1, t);
          try (ResultSet rs = cnt.executeQuery()) {
            rs.next();
            check("after the failed transactions the connection reads tenant " + t, notes.get(t).size(), rs.getInt(1));
          }
          c.commit();
        }
      }
    }
    try (Connection c = connect()) {
      check("through the proxy: nothing of either failed transaction remains", List.of(), readBackProblems(c, List.of(a, b)));
    }
    for (int shard = 0; shard < 2; shard++) {
      try (Connection d = connectDirect(shard); Statement s = d.createStatement();
           ResultSet rs = s.executeQuery("SELECT count(*) FROM notes WHERE id = 900")) {
        rs.next();
        check("directly on " + shards[shard] + ": no row of the failed cross-shard INSERT", 0, rs.getInt(1));
      }
    }
  }

  static void writePlans(Connection c) throws SQLException {
    try (PreparedStatement ps = c.prepareStatement("INSERT INTO plans (id, name) VALUES (?, ?), (?, ?), (?, ?)")) {
      ps.setInt(1, 1);
      ps.setString(2, "free");
      ps.setInt(3, 2);
      ps.setString(4, "pro");
      ps.setInt(5, 3);
      ps.setString(6, "team");
      check("a 3-row INSERT into the reference table says 3 rows, not 3 x shards", 3, ps.executeUpdate());
    }
    try (PreparedStatement ps = c.prepareStatement("UPDATE plans SET name = ? WHERE id = ?")) {
      ps.setString(1, "pro+");
      ps.setInt(2, 2);
      check("an UPDATE of one reference row says 1 row", 1, ps.executeUpdate());
    }
  }

  static void referenceTable() throws Exception {
    String want = "1:free 2:pro+ 3:team ";
    String error = errorOf(() -> {
      try (Connection c = connect()) {
        writePlans(c);
      }
    });
    check("reference-table INSERT and UPDATE with bound parameters (extended protocol) run on every shard", "none", error);
    if (!error.equals("none")) {
      System.out.println("# retrying the reference-table writes with preferQueryMode=simple so the remaining checks can run");
      try (Connection c = connectSimple(); Statement s = c.createStatement()) {
        s.execute("DELETE FROM plans");
        writePlans(c);
      }
    }
    try (Connection c = connect()) {
      try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT id, name FROM plans ORDER BY id")) {
        StringBuilder got = new StringBuilder();
        while (rs.next()) got.append(rs.getInt(1)).append(':').append(rs.getString(2)).append(' ');
        check("reading the reference table through the proxy returns each row once", want, got.toString());
      }
      try (PreparedStatement ps = c.prepareStatement(
          "SELECT a.id, p.name FROM accounts a JOIN plans p ON p.id = a.id WHERE a.tenant_id = ? ORDER BY a.id")) {
        for (long t : new long[] {on(0, 1).get(0), on(1, 1).get(0)}) {
          ps.setLong(1, t);
          StringBuilder got = new StringBuilder();
          try (ResultSet rs = ps.executeQuery()) {
            while (rs.next()) got.append(rs.getInt(1)).append(':').append(rs.getString(2)).append(' ');
          }
          StringBuilder exp = new StringBuilder();
          for (String p : want.trim().split(" ")) {
            if (accounts.get(t).containsKey(Long.parseLong(p.split(":")[0]))) exp.append(p).append(' ');
          }
          check("a tenant's accounts joined with the reference table on " + shards[home.get(t)], exp.toString(), got.toString());
        }
      }
    }
    for (int shard = 0; shard < 2; shard++) {
      try (Connection d = connectDirect(shard); Statement s = d.createStatement();
           ResultSet rs = s.executeQuery("SELECT id, name FROM plans ORDER BY id")) {
        StringBuilder got = new StringBuilder();
        while (rs.next()) got.append(rs.getInt(1)).append(':').append(rs.getString(2)).append(' ');
        check("directly on " + shards[shard] + ": the reference rows are all there", want, got.toString());
      }
    }
  }

  static void hints() throws Exception {
    long a = on(0, 1).get(0);
    long b = on(1, 1).get(0);
    long[] shardTotal = new long[2];
    for (int shard = 0; shard < 2; shard++) {
      try (Connection d = connectDirect(shard); Statement s = d.createStatement();
           ResultSet rs = s.executeQuery("SELECT count(*) FROM accounts")) {
        rs.next();
        shardTotal[shard] = rs.getLong(1);
      }
    }
    try (Connection c = connect(); Statement s = c.createStatement();
         PreparedStatement port = c.prepareStatement("SELECT inet_server_port()");
         PreparedStatement count = c.prepareStatement("SELECT inet_server_port(), count(*) FROM accounts")) {
      // Seven rounds: the prepared statements pass the threshold while the hint changes shards.
      long[] order = {a, b, a, b, a, b, a};
      List<String> badPort = new ArrayList<>();
      List<String> badCount = new ArrayList<>();
      for (long t : order) {
        s.execute("SET shardline.tenant = '" + t + "'");
        try (ResultSet rs = port.executeQuery()) {
          rs.next();
          if (rs.getInt(1) != shardPorts[home.get(t)])
            badPort.add("tenant " + t + ": answered by port " + rs.getInt(1) + ", want " + shardPorts[home.get(t)]);
        }
        try (ResultSet rs = count.executeQuery()) {
          rs.next();
          String got = rs.getInt(1) + " " + rs.getLong(2);
          String want = shardPorts[home.get(t)] + " " + shardTotal[home.get(t)];
          if (!got.equals(want)) badCount.add("tenant " + t + ": port and count(*) " + got + ", want " + want);
        }
      }
      check("SET shardline.tenant routes a prepared SELECT inet_server_port() (7 rounds, alternating " + a + " on s0 and "
          + b + " on s1)", List.of(), badPort);
      check("SET shardline.tenant routes a prepared tenant-less count(*) FROM accounts to that shard alone (7 rounds)",
          List.of(), badCount);
      check("the hinted statements became named server statements", true, serverPrepared(port) && serverPrepared(count));
      s.execute("SET shardline.tenant = '" + b + "'");
      try (ResultSet rs = s.executeQuery("/* shardline: tenant=" + a + " */ SELECT inet_server_port(), count(*) FROM accounts")) {
        rs.next();
        check("the SET hint (tenant " + b + ", s1) is stronger than a comment hint (tenant " + a + ", s0)",
            shardPorts[1] + " " + shardTotal[1], rs.getInt(1) + " " + rs.getLong(2));
      }
      s.execute("RESET shardline.tenant");
      for (long t : new long[] {a, b}) {
        try (PreparedStatement ps = c.prepareStatement("/* shardline: tenant=" + t + " */ SELECT inet_server_port()");
             ResultSet rs = ps.executeQuery()) {
          rs.next();
          check("a leading comment hint tenant=" + t + " routes to " + shards[home.get(t)], shardPorts[home.get(t)], rs.getInt(1));
        }
        try (PreparedStatement ps = c.prepareStatement("SELECT inet_server_port(), count(*) FROM accounts /* shardline: tenant=" + t + " */");
             ResultSet rs = ps.executeQuery()) {
          rs.next();
          check("a trailing comment hint tenant=" + t + " routes a count(*) to " + shards[home.get(t)] + " alone",
              shardPorts[home.get(t)] + " " + shardTotal[home.get(t)], rs.getInt(1) + " " + rs.getLong(2));
        }
      }
      long[] total = {-1};
      String error = errorOf(() -> {
        try (ResultSet rs = s.executeQuery("SELECT count(*) FROM accounts")) {
          rs.next();
          total[0] = rs.getLong(1);
        }
      });
      check("after RESET a tenant-less count(*) (extended protocol) covers both shards again",
          "none " + (shardTotal[0] + shardTotal[1]), error + " " + total[0]);
    }
  }

  static void placement() throws Exception {
    Map<Long, Set<Integer>> seen = new TreeMap<>();
    List<Map<Long, TreeMap<Long, String>>> directAccounts = List.of(new HashMap<>(), new HashMap<>());
    List<Map<Long, TreeMap<Long, String>>> directNotes = List.of(new HashMap<>(), new HashMap<>());
    for (int shard = 0; shard < 2; shard++) {
      try (Connection d = connectDirect(shard); Statement s = d.createStatement()) {
        try (ResultSet rs = s.executeQuery("SELECT tenant_id, id, name, balance FROM accounts")) {
          while (rs.next()) {
            long t = rs.getLong(1);
            directAccounts.get(shard).computeIfAbsent(t, k -> new TreeMap<>())
                .put(rs.getLong(2), rs.getString(3) + "|" + money(rs.getBigDecimal(4)));
            seen.computeIfAbsent(t, k -> new TreeSet<>()).add(shard);
          }
        }
        try (ResultSet rs = s.executeQuery("SELECT tenant_id, id, body FROM notes")) {
          while (rs.next()) {
            long t = rs.getLong(1);
            directNotes.get(shard).computeIfAbsent(t, k -> new TreeMap<>()).put(rs.getLong(2), rs.getString(3));
            seen.computeIfAbsent(t, k -> new TreeSet<>()).add(shard);
          }
        }
      }
      check("directly on " + shards[shard] + ": accounts and notes rows exist", true,
          !directAccounts.get(shard).isEmpty() && !directNotes.get(shard).isEmpty());
    }
    List<String> bad = new ArrayList<>();
    for (Map.Entry<Long, Set<Integer>> e : seen.entrySet()) {
      if (!accounts.containsKey(e.getKey())) bad.add("tenant " + e.getKey() + " was never written");
      else if (e.getValue().size() != 1) bad.add("tenant " + e.getKey() + " on " + e.getValue());
    }
    check("every tenant's rows are on exactly one shard", List.of(), first(bad));
    bad.clear();
    for (long t : tenants) {
      if (!Set.of(home.get(t)).equals(seen.get(t))) bad.add("tenant " + t + " on " + seen.get(t) + ", want " + home.get(t));
    }
    check("every tenant's rows are on the shard its hash and the directory name", List.of(), first(bad));
    bad.clear();
    for (long t : tenants) {
      int s = home.get(t);
      TreeMap<Long, String> da = directAccounts.get(s).getOrDefault(t, new TreeMap<>());
      TreeMap<Long, String> dn = directNotes.get(s).getOrDefault(t, new TreeMap<>());
      if (!da.equals(accounts.get(t))) bad.add("tenant " + t + " accounts on " + shards[s] + ": " + da + " want " + accounts.get(t));
      if (!dn.equals(notes.get(t))) bad.add("tenant " + t + " notes on " + shards[s] + ": " + dn + " want " + notes.get(t));
    }
    check("the rows on the shards are exactly what the client wrote", List.of(), first(bad));
    try (Connection c = connect()) {
      check("through the proxy each of the 200 tenants reads exactly its rows", List.of(), first(readBackProblems(c, tenants)));
      long rows = 0;
      BigDecimal sum = BigDecimal.ZERO;
      for (TreeMap<Long, String> m : accounts.values()) {
        rows += m.size();
        for (String v : m.values()) sum = sum.add(new BigDecimal(v.split("\\|")[1]));
      }
      String[] got = {""};
      String error = errorOf(() -> {
        try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT count(*), sum(balance) FROM accounts")) {
          rs.next();
          got[0] = rs.getLong(1) + " " + money(rs.getBigDecimal(2));
        }
      });
      check("a tenant-less count and sum through the proxy (extended protocol) cover both shards",
          "none " + rows + " " + money(sum), error + " " + got[0]);
    }
  }
}
