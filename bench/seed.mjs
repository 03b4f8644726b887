// Bulk seeding for the todo benchmarks: multi-row INSERTs in large batches on a few connections, with
// progress on stderr. Fills MySQL/MariaDB straight through mysql2 (no ORM, no per-row round trip).
//
//   node bench/seed.mjs mysql://root@127.0.0.1:3306/gatehouse_bench   # schema must exist (app migrates)
//
// Layout: user 1 is the "big" user (100,000 todos); users 2..10,001 are the 10,000 regular users with
// 100 todos each (1,000,000). Regular users' todos are inserted round by round (one todo per user per
// round), so every user's rows are spread across the whole table as they would be in real life.
import { createHash, randomBytes } from 'node:crypto';
import mysql from 'mysql2/promise';

export const BIG_USER_ID = 1;
export const SMALL_USER_ID = 2;
const BATCH_ROWS = 5_000;
const PARALLEL = 2;

export async function connect(url) {
  return mysql.createPool({ uri: url, connectionLimit: PARALLEL + 1, multipleStatements: false });
}

function progress(label, done, total, started) {
  const seconds = (performance.now() - started) / 1000;
  const rate = Math.round(done / Math.max(seconds, 0.001));
  process.stderr.write(
    `\r  ${label}: ${done.toLocaleString('en')} / ${total.toLocaleString('en')} ` +
      `(${Math.round((done / total) * 100)}%, ${rate.toLocaleString('en')} rows/s, ${seconds.toFixed(1)} s)   `,
  );
  if (done === total) {
    process.stderr.write('\n');
  }
}

/** Runs `insert(batch)` over batches produced by `batches`, PARALLEL at a time, reporting progress. */
async function insertAll(pool, label, total, batches, sqlFor) {
  const started = performance.now();
  let done = 0;
  const iterator = batches[Symbol.iterator]();
  const worker = async () => {
    const connection = await pool.getConnection();
    try {
      // Seeding only: the rows are generated consistent, so skip per-row FK and unique re-checks.
      await connection.query('SET SESSION foreign_key_checks = 0, unique_checks = 0');
      for (let next = iterator.next(); !next.done; next = iterator.next()) {
        const rows = next.value;
        const [sql, values] = sqlFor(rows);
        await connection.query(sql, values);
        done += rows.length;
        progress(label, done, total, started);
      }
    } finally {
      connection.release();
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  return (performance.now() - started) / 1000;
}

function* chunk(generator, size) {
  let rows = [];
  for (const row of generator) {
    rows.push(row);
    if (rows.length === size) {
      yield rows;
      rows = [];
    }
  }
  if (rows.length > 0) {
    yield rows;
  }
}

const todoSql = (rows) => [
  'INSERT INTO todos (user_id, title, description, completed, due_at) VALUES ?',
  [rows],
];

function todoRow(userId, n) {
  return [
    userId,
    `Todo #${n} of user ${userId}: call the supplier`,
    n % 5 === 0 ? `Details for todo #${n}` : null,
    n % 3 === 0 ? 1 : 0,
    n % 4 === 0 ? new Date(Date.UTC(2030, 0, 1 + (n % 365))) : null,
  ];
}

/** users 1..count+1 (user 1 = big user), each verified, with a placeholder hash no password matches. */
export async function seedUsers(pool, regularUsers) {
  const total = regularUsers + 1;
  function* rows() {
    for (let id = 1; id <= total; id += 1) {
      yield [id, `bench-${id}@bench.test`, '!bench-seeded-without-password', 1, 'user'];
    }
  }
  return insertAll(pool, 'users', total, chunk(rows(), BATCH_ROWS), (batch) => [
    'INSERT INTO users (id, email, password_hash, is_verified, role) VALUES ?',
    [batch],
  ]);
}

/** One live session per user we send requests as; returns their ids by user id. */
export async function seedSessions(pool, userIds) {
  const sessions = new Map();
  for (const userId of userIds) {
    const [result] = await pool.query(
      'INSERT INTO sessions (user_id, refresh_token_hash, expires_at) VALUES (?, ?, ?)',
      [
        userId,
        createHash('sha256').update(randomBytes(32)).digest('hex'),
        new Date(Date.now() + 24 * 3600 * 1000),
      ],
    );
    sessions.set(userId, result.insertId);
  }
  return sessions;
}

/** The big user's todos, and the small user's (so both exist on the "small table"). */
export async function seedMeasuredUsers(pool, bigCount, smallCount) {
  function* rows() {
    for (let n = 1; n <= bigCount; n += 1) {
      yield todoRow(BIG_USER_ID, n);
      if (n <= smallCount) {
        yield todoRow(SMALL_USER_ID, n);
      }
    }
  }
  return insertAll(
    pool,
    'todos of the measured users',
    bigCount + smallCount,
    chunk(rows(), BATCH_ROWS),
    todoSql,
  );
}

/** `perUser` todos for every regular user except the small one (already seeded), round by round. */
export async function seedEveryoneElse(pool, regularUsers, perUser) {
  const others = regularUsers - 1;
  function* rows() {
    for (let n = 1; n <= perUser; n += 1) {
      for (let userId = SMALL_USER_ID + 1; userId <= regularUsers + 1; userId += 1) {
        yield todoRow(userId, n);
      }
    }
  }
  return insertAll(pool, 'todos of everyone else', others * perUser, chunk(rows(), BATCH_ROWS), todoSql);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const url = process.argv[2];
  if (!url) {
    console.error('usage: node bench/seed.mjs mysql://root@127.0.0.1:3306/<db with the schema>');
    process.exit(2);
  }
  const pool = await connect(url);
  await seedUsers(pool, 10_000);
  await seedMeasuredUsers(pool, 100_000, 100);
  await seedEveryoneElse(pool, 10_000, 100);
  await pool.end();
}
