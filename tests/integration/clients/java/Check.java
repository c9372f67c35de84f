// javacheck: MySQL Connector/J against a MySQL-protocol server over verified
// TLS (sslMode=VERIFY_IDENTITY and VERIFY_CA with a PKCS12 truststore holding
// the test CA). Text protocol, client- and server-side prepared statements,
// batches, cursor fetches, long data, transactions, errors and kNN queries
// whose vector is bound as a parameter. Prints one deterministic line per
// result; the integration tests compare a direct run with a run through vecgate.
import java.math.BigDecimal;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.SQLWarning;
import java.sql.Statement;
import java.sql.Timestamp;
import java.sql.Types;
import java.util.HashMap;
import java.util.Map;

public final class Check {
	private static final Map<String, String> args = new HashMap<>();

	private static String arg(String name, String dflt) {
		String v = args.get(name);
		if (v == null && dflt == null) {
			System.err.println("javacheck: --" + name + " is required");
			System.exit(2);
		}
		return v == null ? dflt : v;
	}

	private static void out(String line) {
		System.out.println(line);
	}

	private static String hex(byte[] b) {
		StringBuilder s = new StringBuilder();
		for (byte x : b)
			s.append(String.format("%02x", x & 0xff));
		return s.toString();
	}

	// One cell, the same way for every run: NULL, the driver's string form,
	// or the length and SHA-256 of a byte string.
	private static String cell(ResultSet rs, int i) throws Exception {
		ResultSetMetaData md = rs.getMetaData();
		int type = md.getColumnType(i);
		if (type == Types.BINARY || type == Types.VARBINARY || type == Types.LONGVARBINARY
		    || type == Types.BLOB) {
			byte[] b = rs.getBytes(i);
			if (b == null)
				return "NULL";
			if (b.length <= 16)
				return "x'" + hex(b) + "'";
			return "bytes(len=" + b.length + " sha256="
			    + hex(MessageDigest.getInstance("SHA-256").digest(b)) + ")";
		}
		String v = rs.getString(i);
		if (v == null)
			return "NULL";
		Object o = rs.getObject(i);
		return o.getClass().getSimpleName() + "(" + v + ")";
	}

	private static void dump(String label, ResultSet rs) throws Exception {
		ResultSetMetaData md = rs.getMetaData();
		StringBuilder h = new StringBuilder(label + " columns:");
		for (int i = 1; i <= md.getColumnCount(); i++)
			h.append(' ').append(md.getColumnLabel(i)).append('/').append(md.getColumnTypeName(i))
			    .append('/').append(md.getPrecision(i)).append('/').append(md.getScale(i))
			    .append(md.isNullable(i) == ResultSetMetaData.columnNoNulls ? "/notnull" : "");
		out(h.toString());
		int n = 0;
		while (rs.next()) {
			StringBuilder r = new StringBuilder(label + " row:");
			for (int i = 1; i <= md.getColumnCount(); i++)
				r.append(' ').append(cell(rs, i));
			out(r.toString());
			n++;
		}
		out(label + " rows: " + n);
		rs.close();
	}

	private static void query(Statement st, String label, String sql) throws Exception {
		dump(label, st.executeQuery(sql));
	}

	private static void warnings(String label, SQLWarning w) {
		for (; w != null; w = w.getNextWarning())
			out(label + " warning: " + w.getErrorCode() + " " + w.getSQLState() + " "
			    + w.getMessage());
	}

	private static void expectError(String label, Statement st, String sql) {
		try {
			st.execute(sql);
			out(label + ": no error");
		} catch (SQLException e) {
			// The message names the database, which differs between runs.
			out(label + ": error " + e.getErrorCode() + " " + e.getSQLState());
		}
	}

	private static String counts(int[] c) {
		StringBuilder s = new StringBuilder();
		for (int x : c)
			s.append(s.length() == 0 ? "" : ",").append(x);
		return "[" + s + "]";
	}

	private static Connection open(String mode, String extra) throws Exception {
		String url = "jdbc:mysql://" + arg("host", null) + ":" + arg("port", null) + "/"
		    + arg("db", null) + "?sslMode=" + mode
		    + "&trustCertificateKeyStoreUrl=file:" + arg("truststore", null)
		    + "&trustCertificateKeyStoreType=PKCS12"
		    + "&trustCertificateKeyStorePassword=" + arg("storepass", null)
		    + "&characterEncoding=UTF-8&connectionTimeZone=UTC" + extra;
		return DriverManager.getConnection(url, arg("user", "root"), arg("password", ""));
	}

	// The query vector is always a bound parameter: a client-side prepared
	// statement inlines it as a string literal, a server-side one sends it as
	// a string parameter of COM_STMT_EXECUTE.
	private static final String KNN =
	    "SELECT id, name, VEC_COSINE_DISTANCE(embedding, ?) AS d FROM items ORDER BY d LIMIT 3";
	private static final String KNN_FILTERED =
	    "SELECT id, VEC_L2_DISTANCE(embedding, ?) AS distance FROM items WHERE name = ? "
	    + "ORDER BY distance LIMIT 2";

	private static void knn(String label, Connection c, int rounds) throws Exception {
		try (PreparedStatement ps = c.prepareStatement(KNN);
		     PreparedStatement pf = c.prepareStatement(KNN_FILTERED)) {
			for (int r = 0; r < rounds; r++) {
				// Rounds apart let a proxy's cache admit and load the table.
				if (r > 0)
					Thread.sleep(150);
				ps.setString(1, "[1,2,3]");
				dump(label + " knn round " + r, ps.executeQuery());
				ps.setString(1, "[0.5, -1, 2.25]");
				dump(label + " knn2 round " + r, ps.executeQuery());
				pf.setString(1, "[3,2,1]");
				pf.setString(2, "beta");
				dump(label + " knn filtered round " + r, pf.executeQuery());
			}
		}
	}

	public static void main(String[] argv) throws Exception {
		for (int i = 0; i + 1 < argv.length; i += 2) {
			if (!argv[i].startsWith("--")) {
				System.err.println("javacheck: unexpected argument " + argv[i]);
				System.exit(2);
			}
			args.put(argv[i].substring(2), argv[i + 1]);
		}
		String vtype = arg("vector-type", "LONGTEXT");
		int rounds = Integer.parseInt(arg("knn-rounds", "6"));

		// 1. Text protocol with the driver's default settings,
		// sslMode=VERIFY_IDENTITY (the certificate's names must match the
		// host), batches rewritten into multi-row statements. At login the
		// driver sends SET character_set_results = NULL: results unconverted,
		// the same bytes for the utf8mb4 table, still answered from memory.
		try (Connection c = open("VERIFY_IDENTITY", "&rewriteBatchedStatements=true");
		     Statement st = c.createStatement()) {
			out("connected: text protocol, VERIFY_IDENTITY");
			out("driver: " + c.getMetaData().getDriverName());
			// The server's view of its own link: through a proxy, the proxy's
			// link to the database, which must be TLS too.
			try (ResultSet rs = st.executeQuery("SHOW SESSION STATUS LIKE 'Ssl_cipher'")) {
				out("server sees tls: " + (rs.next() && !rs.getString(2).isEmpty()));
			}
			st.execute("CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40) COLLATE utf8mb4_bin, "
			    + "score DOUBLE, qty DECIMAL(10,3), created DATETIME(3), tag VARBINARY(16), "
			    + "embedding " + vtype + ")");
			out("insert: " + st.executeUpdate("INSERT INTO items VALUES "
			    + "(1, 'alpha', 1.5, 10.125, '2024-01-02 03:04:05.678', x'00ff', '[1,2,3]'), "
			    + "(2, 'beta', -2, NULL, NULL, NULL, '[3,2,1]'), "
			    + "(3, 'gamma ✓', 1e10, 0.001, '1999-12-31 23:59:59.999', x'', '[1,0,0]'), "
			    + "(4, '日本語', NULL, -5, '2030-06-15 12:00:00', x'41', NULL)"));
			try (PreparedStatement ps = c.prepareStatement(
			         "INSERT INTO items (id, name, score, qty, embedding) VALUES (?, ?, ?, ?, ?)")) {
				for (int i = 5; i <= 24; i++) {
					ps.setInt(1, i);
					ps.setString(2, i % 3 == 0 ? "beta" : "item" + i);
					ps.setDouble(3, i / 4.0);
					ps.setBigDecimal(4, new BigDecimal(i).movePointLeft(2));
					ps.setString(5, "[" + (i % 7) + "," + (i % 5 - 2) + "," + (i * 0.25) + "]");
					ps.addBatch();
				}
				out("batch rewritten: " + counts(ps.executeBatch()));
			}
			st.addBatch("UPDATE items SET score = score + 1 WHERE id BETWEEN 5 AND 8");
			st.addBatch("DELETE FROM items WHERE id = 24");
			st.addBatch("INSERT INTO items (id, name, embedding) VALUES (25, 'beta', '[2,2,2]')");
			out("statement batch: " + counts(st.executeBatch()));
			query(st, "all", "SELECT * FROM items ORDER BY id");
			query(st, "aggregate", "SELECT COUNT(*), SUM(score), MIN(name), MAX(qty), "
			    + "AVG(id) FROM items");
			ResultSet w = st.executeQuery("SELECT 1/0 AS x");
			warnings("division", st.getWarnings());
			dump("division", w);
			expectError("missing table", st, "SELECT * FROM no_such_table");
			expectError("duplicate key", st, "INSERT INTO items (id) VALUES (1)");
			c.setAutoCommit(false);
			st.executeUpdate("DELETE FROM items WHERE id > 20");
			c.rollback();
			st.executeUpdate("UPDATE items SET name = 'alpha2' WHERE id = 1");
			c.commit();
			c.setAutoCommit(true);
			query(st, "after transactions", "SELECT id, name FROM items WHERE id = 1 OR id > 20 "
			    + "ORDER BY id");
			DatabaseMetaData md = c.getMetaData();
			try (ResultSet cols = md.getColumns(arg("db", null), null, "items", "%")) {
				while (cols.next())
					out("metadata column: " + cols.getString("COLUMN_NAME") + " "
					    + cols.getString("TYPE_NAME") + " " + cols.getInt("COLUMN_SIZE"));
			}
			knn("text", c, rounds);
		}

		// 2. Server-side prepared statements (COM_STMT_PREPARE / EXECUTE /
		// CLOSE), sslMode=VERIFY_CA; batches executed one statement at a time.
		// characterSetResults names the connection's own character set, so the
		// driver does not send SET character_set_results = NULL at login.
		try (Connection c = open("VERIFY_CA", "&useServerPrepStmts=true&cachePrepStmts=false"
		         + "&characterSetResults=UTF-8")) {
			out("connected: server-side prepared statements, VERIFY_CA");
			try (PreparedStatement ps = c.prepareStatement(
			         "SELECT ? AS i, ? AS s, ? AS d, ? AS n, ? AS t, HEX(?) AS b, ? AS m, ? AS l")) {
				ps.setInt(1, -42);
				ps.setString(2, "héllo ✓");
				ps.setDouble(3, 2.5e-3);
				ps.setNull(4, Types.VARCHAR);
				ps.setTimestamp(5, Timestamp.valueOf("2024-02-29 13:14:15.5"));
				ps.setBytes(6, new byte[] {0, 1, 2, (byte) 0xfe});
				ps.setBigDecimal(7, new BigDecimal("12345.6789"));
				ps.setLong(8, Long.MIN_VALUE);
				dump("prepared types", ps.executeQuery());
			}
			try (PreparedStatement ps = c.prepareStatement(
			         "INSERT INTO items (id, name, score, tag, embedding) VALUES (?, ?, ?, ?, ?)")) {
				for (int i = 30; i < 40; i++) {
					ps.setInt(1, i);
					ps.setString(2, "prepared" + i);
					if (i % 4 == 0)
						ps.setNull(3, Types.DOUBLE);
					else
						ps.setDouble(3, -i);
					ps.setBytes(4, ("k" + i).getBytes(StandardCharsets.UTF_8));
					ps.setString(5, "[" + i + ",1," + (40 - i) + "]");
					ps.addBatch();
				}
				out("prepared batch: " + counts(ps.executeBatch()));
			}
			try (PreparedStatement ps = c.prepareStatement(
			         "SELECT id, name, score, tag FROM items WHERE id >= ? AND name LIKE ? ORDER BY id")) {
				ps.setInt(1, 30);
				ps.setString(2, "prepared3%");
				dump("prepared select", ps.executeQuery());
				ps.setInt(1, 0);
				ps.setString(2, "%a%");
				dump("prepared select again", ps.executeQuery());
			}
			try (Statement st = c.createStatement()) {
				st.execute("CREATE TABLE blobs (id INT AUTO_INCREMENT PRIMARY KEY, body LONGBLOB)");
			}
			byte[] big = new byte[1 << 20];
			for (int i = 0; i < big.length; i++)
				big[i] = (byte) (i * 31 + (i >> 8));
			try (PreparedStatement ps = c.prepareStatement("INSERT INTO blobs (body) VALUES (?)",
			         Statement.RETURN_GENERATED_KEYS)) {
				ps.setBytes(1, big);
				out("blob insert: " + ps.executeUpdate());
				ResultSet keys = ps.getGeneratedKeys();
				while (keys.next())
					out("generated key: " + keys.getLong(1));
			}
			try (PreparedStatement ps = c.prepareStatement("SELECT id, body FROM blobs WHERE id = ?")) {
				ps.setInt(1, 1);
				dump("blob", ps.executeQuery());
			}
			try (PreparedStatement ps = c.prepareStatement("SELECT * FROM no_such_table WHERE a = ?")) {
				ps.setInt(1, 1);
				ps.executeQuery();
				out("prepare missing table: no error");
			} catch (SQLException e) {
				out("prepare missing table: error " + e.getErrorCode() + " " + e.getSQLState());
			}
			knn("server-prepared", c, rounds);
		}

		// 3. Cursor fetches: server-side statements read in chunks of two rows
		// (COM_STMT_FETCH).
		try (Connection c = open("VERIFY_IDENTITY",
		         "&useServerPrepStmts=true&useCursorFetch=true&defaultFetchSize=2");
		     PreparedStatement ps = c.prepareStatement(
		         "SELECT id, name, score FROM items WHERE id < ? ORDER BY id")) {
			out("connected: cursor fetch, VERIFY_IDENTITY");
			ps.setInt(1, 12);
			dump("cursor", ps.executeQuery());
		}
		// 4. The text protocol again with characterSetResults: the vector is
		// inlined by the driver as a string literal.
		try (Connection c = open("VERIFY_IDENTITY", "&characterSetResults=UTF-8")) {
			out("connected: text protocol with characterSetResults, VERIFY_IDENTITY");
			knn("text utf8mb4", c, rounds);
		}
		out("done");
	}
}
