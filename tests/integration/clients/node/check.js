// nodecheck: mysql2 against a MySQL-protocol server over verified TLS, with
// server-side prepared statements (connection.execute: COM_STMT_PREPARE and
// EXECUTE; unprepare: COM_STMT_CLOSE). Prints one deterministic line per
// result; the integration tests compare a direct run with one through vecgate.
//   node check.js --host H --port P --ca CA.pem --db DB
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const tls = require('tls');
const { parseArgs } = require('util');
const mysql = require('mysql2/promise');

const { values: opt } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '4000' },
    ca: { type: 'string' },
    db: { type: 'string' },
    user: { type: 'string', default: 'root' },
    password: { type: 'string', default: '' },
  },
});
if (!opt.ca || !opt.db) {
  console.error('usage: node check.js --host H --port P --ca CA.pem --db DB');
  process.exit(2);
}

// One value, printed the same way on every run: NULL, a number, a quoted
// string, or the length and SHA-256 of a long byte string.
function cell(v) {
  if (v === null || v === undefined) return 'NULL';
  if (Buffer.isBuffer(v)) {
    if (v.length > 64) {
      const sum = crypto.createHash('sha256').update(v).digest('hex');
      return `bytes(len=${v.length} sha256=${sum})`;
    }
    return 'hex:' + v.toString('hex');
  }
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return `${typeof v}(${JSON.stringify(v)})`;
}

function printRows(label, rows, fields) {
  const cols = fields.map((f) => `${f.name}:${f.columnType}`).join(',');
  console.log(`${label}: columns ${cols}`);
  for (const row of rows) {
    console.log(`${label}: row ${row.map(cell).join(' | ')}`);
  }
  console.log(`${label}: ${rows.length} rows`);
}

function printResult(label, r) {
  console.log(`${label}: affected ${r.affectedRows} insert_id ${r.insertId} warnings ${r.warningStatus}`);
}

async function main() {
  const ca = fs.readFileSync(opt.ca);
  const conn = await mysql.createConnection({
    host: opt.host,
    port: Number(opt.port),
    user: opt.user,
    password: opt.password,
    database: opt.db,
    charset: 'UTF8MB4_GENERAL_CI',
    ssl: { ca, rejectUnauthorized: true, verifyIdentity: true },
    supportBigNumbers: true,
    bigNumberStrings: true,
    dateStrings: true,
    rowsAsArray: true,
    multipleStatements: false,
    connectTimeout: 10000,
  });
  // mysql2 sends no SNI for an IP address and Node then checks the
  // certificate against "localhost": check it against the host we dialled too.
  const peer = conn.connection.stream.getPeerCertificate(true);
  const idErr = tls.checkServerIdentity(opt.host, peer);
  if (idErr) throw idErr;
  console.log(`connected, tls verified for host: ${conn.connection.stream.authorized === true}`);

  let [rows, fields] = await conn.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'");
  console.log(`tls in use: ${rows.length === 1 && rows[0][1] !== ''}`);
  [rows] = await conn.query('SELECT DATABASE()');
  console.log(`database() is --db: ${rows[0][0] === opt.db}`);

  await conn.query(`CREATE TABLE items (
    id INT PRIMARY KEY,
    n BIGINT NULL,
    s VARCHAR(200) CHARACTER SET utf8mb4 NULL,
    f DOUBLE NULL,
    d DECIMAL(12,3) NULL,
    t DATETIME NULL,
    b LONGBLOB NULL)`);
  console.log('create table: ok');

  const blob = Buffer.alloc(1 << 20);
  for (let i = 0; i < blob.length; i++) blob[i] = (i * 7 + (i >> 8)) & 0xff;
  const small = Buffer.from([0, 1, 2, 0xff, 0x27, 0x22, 0x5c, 0]);

  const insertSql = 'INSERT INTO items (id, n, s, f, d, t, b) VALUES (?, ?, ?, ?, ?, ?, ?)';
  const inserts = [
    [1, 42, 'it\'s a "quoted" string', 1.5, '12.345', '2024-02-29 12:34:56', small],
    [2, '-9223372036854775808', 'héllo wörld ✓ 日本語 🙂', -0.25, '-0.001', null, Buffer.alloc(0)],
    [3, null, null, null, null, null, blob],
    [4, '9223372036854775807', 'back\\slash\nnewline\ttab\u0000nul', 1e300, '999999999.999', '1999-12-31 23:59:59', null],
    [5, 0, '', 0, '0', '2000-01-01 00:00:00', Buffer.from('plain')],
  ];
  for (const args of inserts) {
    const [r] = await conn.execute(insertSql, args);
    printResult(`insert id=${args[0]}`, r);
  }
  // An INSERT whose BIGINT parameter is a JavaScript BigInt.
  {
    const [r] = await conn.execute('UPDATE items SET n = ? WHERE id = ?', [BigInt('1234567890123456789'), 5]);
    printResult('update bigint', r);
  }

  const selectSql = 'SELECT id, n, s, f, d, t, b, LENGTH(b) AS blen FROM items WHERE id >= ? AND (s IS NULL OR s <> ?) ORDER BY id';
  [rows, fields] = await conn.execute(selectSql, [1, 'no such string']);
  printRows('select id>=1', rows, fields);
  [rows, fields] = await conn.execute(selectSql, [3, '']);
  printRows('select id>=3', rows, fields);
  [rows, fields] = await conn.execute("SELECT ? AS i, ? AS s, ? AS nul, ? AS f, CONCAT(?, '|') AS c",
    [7, "ünï'cødé", null, 2.5, 'x']);
  printRows('echo', rows, fields);

  // A transaction that commits.
  await conn.beginTransaction();
  printResult('tx1 insert', (await conn.execute('INSERT INTO items (id, s) VALUES (?, ?)', [10, 'committed']))[0]);
  printResult('tx1 update', (await conn.execute('UPDATE items SET n = n + ? WHERE id = ?', [1, 1]))[0]);
  await conn.commit();
  console.log('tx1: committed');
  [rows, fields] = await conn.execute('SELECT id, n, s FROM items WHERE id IN (?, ?) ORDER BY id', [1, 10]);
  printRows('after commit', rows, fields);

  // A transaction that rolls back: its changes are visible inside, gone after.
  const countSql = 'SELECT COUNT(*), SUM(id) FROM items WHERE id > ?';
  await conn.beginTransaction();
  printResult('tx2 insert', (await conn.execute('INSERT INTO items (id, s) VALUES (?, ?)', [11, 'rolled back']))[0]);
  printResult('tx2 delete', (await conn.execute('DELETE FROM items WHERE id = ?', [5]))[0]);
  [rows, fields] = await conn.execute(countSql, [0]);
  printRows('inside tx2', rows, fields);
  await conn.rollback();
  console.log('tx2: rolled back');
  [rows, fields] = await conn.execute(countSql, [0]);
  printRows('after rollback', rows, fields);

  // COM_STMT_CLOSE for the cached statements, then one re-prepared after it.
  conn.unprepare(selectSql);
  conn.unprepare(countSql);
  [rows, fields] = await conn.execute(countSql, [4]);
  printRows('after unprepare', rows, fields);

  [rows] = await conn.query('SELECT VERSION()');
  console.log(`version: ${rows[0][0]}`);

  // A server error comes back as an error with its code, and the session goes on.
  try {
    await conn.execute('INSERT INTO items (id) VALUES (?)', [1]);
    throw new Error('duplicate key was accepted');
  } catch (e) {
    if (!e.errno) throw e;
    console.log(`duplicate key: error ${e.errno} ${e.code}`);
  }
  [rows, fields] = await conn.execute('SELECT id FROM items ORDER BY id', []);
  printRows('final', rows, fields);
  await conn.end();
  console.log('done');
}

// mysql2 has no read timeout for execute(): a stalled server must still end
// the run with an error rather than hang it.
setTimeout(() => {
  console.error('nodecheck: no answer within 60 s (server or proxy stalled)');
  process.exit(1);
}, 60000).unref();

main().catch((e) => {
  console.error(`nodecheck: ${e.stack || e}`);
  process.exit(1);
});
