// `npm run test:mysql` fails fast, in one line, when MySQL is not reachable: it never skips silently.
import mysql from 'mysql2/promise';

const url = process.env.TEST_DATABASE_URL ?? 'mysql://root@127.0.0.1:3306';
try {
  const connection = await mysql.createConnection({ uri: url, connectTimeout: 3000 });
  await connection.end();
} catch (error) {
  console.error(
    `test:mysql needs a MySQL/MariaDB server: ${url} is not reachable (${error.code ?? error.message}). ` +
      'Start one, or point TEST_DATABASE_URL=mysql://user:pass@host:3306 at one.',
  );
  process.exit(1);
}
