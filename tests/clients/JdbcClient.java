// pgJDBC, unmodified, against the shardline proxy (run by tests/clients/jdbc_test.sh).
//
// Usage: java -cp /usr/share/java/postgresql.jar JdbcClient.java HOST PORT USER PASSWORD DATABASE
// Prints `ok - ...` / `FAIL - ...` per check and ends with `result: N passed, M failed`.

import java.math.BigDecimal;
import java.sql.BatchUpdateException;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.ParameterMetaData;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Savepoint;
import java.sql.Statement;
import java.sql.Types;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;

import org.postgresql.PGStatement;

public class JdbcClient {
  static String url;
  static Properties props = new Properties();
  static int passed = 0;
  static int failed = 0;

  static synchronized void check(String name, Object expected, Object actual) {
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

  static Connection connect() throws SQLException {
    return DriverManager.getConnection(url, props);
  }

  interface Step {
    void run() throws Exception;
  }

  static final long startNanos = System.nanoTime();

  /** Runs one group of checks; an unexpected exception is a failure, not a crash. */
  static void step(String name, Step s) {
    if (System.nanoTime() - startNanos > TimeUnit.SECONDS.toNanos(60)) {
      synchronized (JdbcClient.class) {
        failed++;
      }
      System.out.println("FAIL - " + name + " skipped: the 60 s time budget is spent");
      return;
    }
    try {
      s.run();
    } catch (Exception e) {
      synchronized (JdbcClient.class) {
        failed++;
      }
      String state = e instanceof SQLException ? " [SQLSTATE " + ((SQLException) e).getSQLState() + "]" : "";
      System.out.println("FAIL - " + name + " threw " + e.getClass().getSimpleName() + state + ": " + e.getMessage());
    }
  }

  static long backendPid(Connection c) throws SQLException {
    try (Statement s = c.createStatement(); ResultSet rs = s.executeQuery("SELECT pg_backend_pid()")) {
      rs.next();
      return rs.getLong(1);
    }
  }

  public static void main(String[] args) throws Exception {
    url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[4];
    props.setProperty("user", args[2]);
    props.setProperty("password", args[3]);
    props.setProperty("ApplicationName", "jdbc-test");
    props.setProperty("connectTimeout", "10");
    // A statement that gets no answer fails after 15 s instead of hanging the test.
    props.setProperty("socketTimeout", "15");

    step("setup", JdbcClient::setup);
    step("prepared statement past prepareThreshold", JdbcClient::preparedPastThreshold);
    step("named statement on a reassigned server", JdbcClient::reassignedServer);
    step("several connections sharing the pool", JdbcClient::concurrentConnections);
    step("batch inserts", JdbcClient::batches);
    step("transaction with rollback", JdbcClient::transactions);
    step("metadata", JdbcClient::metadata);
    step("errors and recovery", JdbcClient::errors);

    System.out.println("result: " + passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }

  static void setup() throws SQLException {
    try (Connection c = connect(); Statement s = c.createStatement()) {
      s.execute("DROP TABLE IF EXISTS j_items");
      s.execute("CREATE TABLE j_items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2), "
          + "created timestamp DEFAULT '2024-01-02 03:04:05')");
      s.execute("INSERT INTO j_items (id, name, price) SELECT g, 'item-' || g, g * 1.25 FROM generate_series(1, 200) g");
      check("setup created 200 rows", 200, s.getUpdateCount());
    }
  }

  /** One PreparedStatement executed 15 times: unnamed at first, a named server statement from the 5th on. */
  static void preparedPastThreshold() throws SQLException {
    try (Connection c = connect();
         PreparedStatement ps = c.prepareStatement("SELECT id, name, price FROM j_items WHERE id = ? OR name = ? ORDER BY id")) {
      check("pgJDBC's default prepareThreshold is 5", 5, ps.unwrap(PGStatement.class).getPrepareThreshold());
      List<String> wrong = new ArrayList<>();
      boolean server = false;
      for (int i = 1; i <= 15; i++) {
        ps.setInt(1, i);
        ps.setString(2, "item-" + (i + 100));
        try (ResultSet rs = ps.executeQuery()) {
          StringBuilder got = new StringBuilder();
          while (rs.next()) got.append(rs.getInt(1)).append(':').append(rs.getString(2)).append(':').append(rs.getBigDecimal(3)).append(' ');
          String want = i + ":item-" + i + ":" + new BigDecimal(i).multiply(new BigDecimal("1.25")).setScale(2)
              + " " + (i + 100) + ":item-" + (i + 100) + ":" + new BigDecimal(i + 100).multiply(new BigDecimal("1.25")).setScale(2) + " ";
          if (!want.equals(got.toString())) wrong.add("execution " + i + ": got '" + got + "' want '" + want + "'");
        }
        if (i == 3) check("before the threshold pgJDBC does not use a server-prepared statement", false,
            ps.unwrap(PGStatement.class).isUseServerPrepare());
        if (i >= 5) server = ps.unwrap(PGStatement.class).isUseServerPrepare();
      }
      check("after 5 executions pgJDBC uses a named server-prepared statement", true, server);
      check("all 15 executions returned the right two rows", List.of(), wrong);

      // The same statement text in a second PreparedStatement on the same connection reuses
      // pgJDBC's statement cache (the server statement is already prepared).
      try (PreparedStatement ps2 = c.prepareStatement("SELECT id, name, price FROM j_items WHERE id = ? OR name = ? ORDER BY id")) {
        ps2.setInt(1, 42);
        ps2.setString(2, "none");
        try (ResultSet rs = ps2.executeQuery()) {
          rs.next();
          check("a cached server statement used from a second PreparedStatement", "item-42", rs.getString(2));
          check("it returned exactly one row", false, rs.next());
        }
      }
    }
  }

  /**
   * A named server statement used again after the proxy moved the connection to another server:
   * while the server that ran it is held by another client's open transaction, the next execution
   * must run elsewhere and still return the right rows.
   */
  static void reassignedServer() throws SQLException {
    try (Connection b = connect();
         PreparedStatement ps = b.prepareStatement("SELECT name, pg_backend_pid() FROM j_items WHERE id = ?")) {
      long firstPid = 0;
      for (int i = 1; i <= 6; i++) {
        ps.setInt(1, i);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          check("execution " + i + " before the reassignment returns item-" + i, "item-" + i, rs.getString(1));
          firstPid = rs.getLong(2);
        }
      }
      check("the statement is server-prepared now", true, ps.unwrap(PGStatement.class).isUseServerPrepare());
      // Open transactions on other connections until one of them holds firstPid's server.
      List<Connection> holders = new ArrayList<>();
      boolean held = false;
      try {
        for (int k = 0; k < 10 && !held; k++) {
          Connection h = connect();
          holders.add(h);
          h.setAutoCommit(false);
          held = backendPid(h) == firstPid;
        }
        check("another client's transaction holds the server that prepared the statement", true, held);
        for (int i = 7; i <= 12; i++) {
          ps.setInt(1, i);
          try (ResultSet rs = ps.executeQuery()) {
            rs.next();
            check("execution " + i + " on another server returns item-" + i, "item-" + i, rs.getString(1));
            if (i == 7) check("execution 7 ran on a different server process", true, rs.getLong(2) != firstPid);
          }
        }
      } finally {
        for (Connection h : holders) {
          h.rollback();
          h.close();
        }
      }
      // Back on any server, including the first one again.
      for (int i = 13; i <= 16; i++) {
        ps.setInt(1, i);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          check("execution " + i + " after the holders left returns item-" + i, "item-" + i, rs.getString(1));
        }
      }
    }
  }

  /** 6 connections x 40 executions in parallel, autocommit: server connections change hands all the time. */
  static void concurrentConnections() throws Exception {
    ExecutorService pool = Executors.newFixedThreadPool(6);
    List<Future<String>> results = new ArrayList<>();
    for (int t = 0; t < 6; t++) {
      final int worker = t;
      results.add(pool.submit(() -> {
        StringBuilder errors = new StringBuilder();
        try (Connection c = connect();
             PreparedStatement ps = c.prepareStatement("SELECT id, name FROM j_items WHERE id BETWEEN ? AND ? ORDER BY id");
             PreparedStatement up = c.prepareStatement("UPDATE j_items SET price = price WHERE id = ?")) {
          for (int i = 0; i < 40; i++) {
            int lo = 1 + (worker * 40 + i) % 190;
            ps.setInt(1, lo);
            ps.setInt(2, lo + 2);
            try (ResultSet rs = ps.executeQuery()) {
              for (int k = 0; k < 3; k++) {
                if (!rs.next() || rs.getInt(1) != lo + k || !rs.getString(2).equals("item-" + (lo + k)))
                  errors.append("worker ").append(worker).append(" iteration ").append(i).append(" row ").append(k).append("; ");
              }
              if (rs.next()) errors.append("worker ").append(worker).append(" iteration ").append(i).append(" extra row; ");
            }
            up.setInt(1, lo);
            if (up.executeUpdate() != 1) errors.append("worker ").append(worker).append(" update ").append(i).append("; ");
          }
        }
        return errors.toString();
      }));
    }
    StringBuilder all = new StringBuilder();
    for (Future<String> f : results) all.append(f.get(90, TimeUnit.SECONDS));
    pool.shutdown();
    check("6 parallel connections x 40 prepared executions all returned the right rows", "", all.toString());
  }

  static void batches() throws SQLException {
    try (Connection c = connect(); Statement s = c.createStatement()) {
      s.execute("DROP TABLE IF EXISTS j_batch");
      s.execute("CREATE TABLE j_batch (id int PRIMARY KEY, label text, qty int)");
      c.setAutoCommit(false);
      int[] counts;
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO j_batch VALUES (?, ?, ?)")) {
        for (int i = 1; i <= 300; i++) {
          ps.setInt(1, i);
          ps.setString(2, "batch-" + i);
          ps.setInt(3, i % 5);
          ps.addBatch();
        }
        counts = ps.executeBatch();
      }
      c.commit();
      int[] ones = new int[300];
      Arrays.fill(ones, 1);
      check("executeBatch reports one row per insert", ones, counts);
      try (ResultSet rs = s.executeQuery("SELECT count(*), sum(qty), max(label) FROM j_batch")) {
        rs.next();
        check("the batch stored 300 rows", "300 600 batch-99", rs.getInt(1) + " " + rs.getInt(2) + " " + rs.getString(3));
      }
      c.commit();
      // A batch with a duplicate key fails; the transaction rolls back as a whole.
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO j_batch VALUES (?, ?, ?)")) {
        for (int id : new int[] {301, 302, 5, 303}) {
          ps.setInt(1, id);
          ps.setString(2, "again");
          ps.setInt(3, 0);
          ps.addBatch();
        }
        ps.executeBatch();
        check("a batch with a duplicate key throws BatchUpdateException", "BatchUpdateException", "no exception");
      } catch (BatchUpdateException e) {
        check("the batch failure carries SQLSTATE 23505", "23505", e.getNextException() != null
            ? e.getNextException().getSQLState() : e.getSQLState());
      }
      c.rollback();
      try (ResultSet rs = s.executeQuery("SELECT count(*) FROM j_batch")) {
        rs.next();
        check("the failed batch left 300 rows", 300, rs.getInt(1));
      }
      c.commit();
      // A plain Statement batch of different statements.
      s.addBatch("UPDATE j_batch SET qty = qty + 1 WHERE id <= 10");
      s.addBatch("DELETE FROM j_batch WHERE id > 290");
      s.addBatch("INSERT INTO j_batch VALUES (1000, 'stmt', 7)");
      check("a Statement batch reports each statement's row count", new int[] {10, 10, 1}, s.executeBatch());
      c.commit();
      c.setAutoCommit(true);
    }
  }

  static void transactions() throws SQLException {
    try (Connection c = connect(); Statement s = c.createStatement()) {
      c.setAutoCommit(false);
      s.executeUpdate("INSERT INTO j_items (id, name) VALUES (1001, 'in-tx')");
      s.executeUpdate("UPDATE j_items SET name = 'changed' WHERE id = 1");
      try (ResultSet rs = s.executeQuery("SELECT count(*) FILTER (WHERE id = 1001), max(name) FILTER (WHERE id = 1) FROM j_items")) {
        rs.next();
        check("the transaction sees its own writes", "1 changed", rs.getInt(1) + " " + rs.getString(2));
      }
      c.rollback();
      try (ResultSet rs = s.executeQuery("SELECT count(*) FILTER (WHERE id = 1001), max(name) FILTER (WHERE id = 1) FROM j_items")) {
        rs.next();
        check("rollback undid both writes", "0 item-1", rs.getInt(1) + " " + rs.getString(2));
      }
      c.commit();
      s.executeUpdate("INSERT INTO j_items (id, name) VALUES (1002, 'kept')");
      Savepoint sp = c.setSavepoint("sp1");
      s.executeUpdate("INSERT INTO j_items (id, name) VALUES (1003, 'dropped')");
      c.rollback(sp);
      c.commit();
      try (ResultSet rs = s.executeQuery("SELECT string_agg(name, ',' ORDER BY id) FROM j_items WHERE id IN (1002, 1003)")) {
        rs.next();
        check("rollback to a savepoint kept only the earlier insert", "kept", rs.getString(1));
      }
      c.commit();
      c.setAutoCommit(true);
      // Another connection sees the committed row.
      try (Connection o = connect(); Statement os = o.createStatement();
           ResultSet rs = os.executeQuery("SELECT name FROM j_items WHERE id = 1002")) {
        check("another connection sees the committed row", true, rs.next() && rs.getString(1).equals("kept"));
      }
    }
  }

  static void metadata() throws SQLException {
    try (Connection c = connect()) {
      DatabaseMetaData md = c.getMetaData();
      check("getDatabaseProductName", "PostgreSQL", md.getDatabaseProductName());
      check("getDatabaseMajorVersion is 15", 15, md.getDatabaseMajorVersion());
      check("getUserName", props.getProperty("user"), md.getUserName());
      List<String> tables = new ArrayList<>();
      try (ResultSet rs = md.getTables(null, "public", "j_%", new String[] {"TABLE"})) {
        while (rs.next()) tables.add(rs.getString("TABLE_NAME"));
      }
      check("getTables finds the test tables", List.of("j_batch", "j_items"), tables);
      List<String> cols = new ArrayList<>();
      try (ResultSet rs = md.getColumns(null, "public", "j_items", null)) {
        while (rs.next()) cols.add(rs.getString("COLUMN_NAME") + ":" + rs.getString("TYPE_NAME") + ":" + rs.getInt("NULLABLE"));
      }
      check("getColumns lists names, types and nullability",
          List.of("id:int4:0", "name:text:0", "price:numeric:1", "created:timestamp:1"), cols);
      try (ResultSet rs = md.getPrimaryKeys(null, "public", "j_items")) {
        check("getPrimaryKeys", "id", rs.next() ? rs.getString("COLUMN_NAME") : null);
      }
      try (PreparedStatement ps = c.prepareStatement("SELECT id, name, price, created FROM j_items WHERE id = ? AND name <> ?")) {
        ParameterMetaData pmd = ps.getParameterMetaData();
        check("getParameterMetaData describes 2 parameters", "2 " + Types.INTEGER + " " + Types.VARCHAR,
            pmd.getParameterCount() + " " + pmd.getParameterType(1) + " " + pmd.getParameterType(2));
        ResultSetMetaData rmd = ps.getMetaData();
        check("PreparedStatement.getMetaData describes the columns before execution",
            "4 id name price created " + Types.INTEGER + " " + Types.NUMERIC + " " + Types.TIMESTAMP,
            rmd.getColumnCount() + " " + rmd.getColumnName(1) + " " + rmd.getColumnName(2) + " " + rmd.getColumnName(3)
                + " " + rmd.getColumnName(4) + " " + rmd.getColumnType(1) + " " + rmd.getColumnType(3) + " " + rmd.getColumnType(4));
        ps.setInt(1, 3);
        ps.setString(2, "x");
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          check("ResultSetMetaData reports the base table", "j_items", rs.getMetaData().getTableName(2));
          check("the described statement returns its row", "item-3 3.75 2024-01-02 03:04:05.0",
              rs.getString(2) + " " + rs.getBigDecimal(3) + " " + rs.getTimestamp(4));
        }
      }
    }
  }

  static void errors() throws SQLException {
    try (Connection c = connect(); Statement s = c.createStatement()) {
      try {
        s.executeQuery("SELECT * FROM no_such_table");
        check("an unknown table raises an error", "42P01", "no error");
      } catch (SQLException e) {
        check("an unknown table raises 42P01", "42P01", e.getSQLState());
      }
      try (ResultSet rs = s.executeQuery("SELECT 40 + 2")) {
        rs.next();
        check("autocommit connection works after the error", 42, rs.getInt(1));
      }
      c.setAutoCommit(false);
      try (PreparedStatement ps = c.prepareStatement("INSERT INTO j_items (id, name) VALUES (?, ?)")) {
        ps.setInt(1, 1);
        ps.setString(2, "dup");
        ps.executeUpdate();
        check("a duplicate key raises an error", "23505", "no error");
      } catch (SQLException e) {
        check("a duplicate key raises 23505", "23505", e.getSQLState());
      }
      try {
        s.executeQuery("SELECT 1");
        check("the aborted transaction refuses statements", "25P02", "no error");
      } catch (SQLException e) {
        check("the aborted transaction refuses statements with 25P02", "25P02", e.getSQLState());
      }
      c.rollback();
      try (ResultSet rs = s.executeQuery("SELECT name FROM j_items WHERE id = 1")) {
        rs.next();
        check("after rollback the transaction works and the row is unchanged", "item-1", rs.getString(1));
      }
      c.commit();
      c.setAutoCommit(true);
      try (PreparedStatement ps = c.prepareStatement("SELECT 10 / ?")) {
        ps.setInt(1, 0);
        ps.executeQuery();
        check("division by zero in a prepared statement", "22012", "no error");
      } catch (SQLException e) {
        check("division by zero in a prepared statement raises 22012", "22012", e.getSQLState());
      }
      check("the connection is still valid", true, c.isValid(5));
    }
    try {
      Properties bad = new Properties();
      bad.putAll(props);
      bad.setProperty("password", props.getProperty("password") + "-wrong");
      DriverManager.getConnection(url, bad).close();
      check("a wrong password is refused", "28P01", "connected");
    } catch (SQLException e) {
      check("a wrong password is refused with 28P01", "28P01", e.getSQLState());
    }
  }
}
