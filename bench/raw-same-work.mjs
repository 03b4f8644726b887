// The same-work raw baseline (DESIGN §7, issue 15): bare Fastify + mysql2 + jsonwebtoken doing what
// Gatehouse does for GET /api/v1/users/me and GET /api/v1/todos, and nothing more: HS256 verify with
// iss/aud/exp, the per-request session + user query, the handler's query, a response built field by
// field. No logging, no helmet, no validation: the ratio against it is what the framework and the
// production defaults cost. It runs with the V8 flags Gatehouse's main.ts sets (src/heap-tuning.ts):
// they cut the raw server's CPU per request by a quarter as well, and a flag only one side had would
// be counted as the framework's gain.
//
//   DATABASE_URL=mysql://… JWT_SECRET=… JWT_ISSUER=… JWT_AUDIENCE=… PORT=3901 node bench/raw-same-work.mjs
import '../dist/src/heap-tuning.js';
import { createSecretKey } from 'node:crypto';
import Fastify from 'fastify';
import jwt from 'jsonwebtoken';
import mysql from 'mysql2/promise';

const PAGE_LIMIT = 20;

export async function startRawSameWork({ databaseUrl, jwtSecret, issuer, audience, port, poolSize = 10 }) {
  const pool = mysql.createPool({ uri: databaseUrl, connectionLimit: poolSize });
  const key = createSecretKey(Buffer.from(jwtSecret, 'utf8'));
  const verifyOptions = { algorithms: ['HS256'], issuer, audience };
  const app = Fastify({ logger: false });

  /** The caller of a bearer token, or null: the JWT check and the live-session query. */
  async function caller(request) {
    const header = request.headers.authorization;
    if (typeof header !== 'string' || !header.startsWith('Bearer ')) {
      return null;
    }
    let claims;
    try {
      claims = jwt.verify(header.slice(7), key, verifyOptions);
    } catch {
      return null;
    }
    const userId = Number(claims.sub);
    const sessionId = Number(claims.sid);
    const [rows] = await pool.query(
      `SELECT u.email, u.role, u.is_verified
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = ? AND s.user_id = ? AND s.revoked_at IS NULL AND s.expires_at > ? AND u.disabled_at IS NULL`,
      [sessionId, userId, new Date()],
    );
    return rows[0] ? { id: userId, ...rows[0] } : null;
  }

  const unauthorized = (reply) => reply.code(401).send({ code: 'UNAUTHENTICATED' });

  app.get('/api/v1/users/me', async (request, reply) => {
    const user = await caller(request);
    if (!user) {
      return unauthorized(reply);
    }
    const [[row]] = await pool.query(
      'SELECT id, email, username, is_verified, role, created_at, last_login_at, totp_enabled_at FROM users WHERE id = ?',
      [user.id],
    );
    return {
      id: row.id,
      email: row.email,
      username: row.username,
      isVerified: Boolean(row.is_verified),
      mfaEnabled: row.totp_enabled_at !== null,
      role: row.role,
      createdAt: row.created_at.toISOString(),
      lastLoginAt: row.last_login_at ? row.last_login_at.toISOString() : null,
    };
  });

  app.get('/api/v1/todos', async (request, reply) => {
    const user = await caller(request);
    if (!user) {
      return unauthorized(reply);
    }
    const [rows] = await pool.query(
      `SELECT id, title, description, completed, due_at, created_at, updated_at
         FROM todos FORCE INDEX (IDX_todos_user_id_id)
        WHERE user_id = ? ORDER BY id DESC LIMIT ?`,
      [user.id, PAGE_LIMIT + 1],
    );
    const hasMore = rows.length > PAGE_LIMIT;
    const items = (hasMore ? rows.slice(0, PAGE_LIMIT) : rows).map((row) => ({
      id: row.id,
      title: row.title,
      description: row.description,
      completed: Boolean(row.completed),
      dueAt: row.due_at ? row.due_at.toISOString() : null,
      createdAt: row.created_at.toISOString(),
      updatedAt: row.updated_at.toISOString(),
    }));
    const last = items.at(-1);
    return {
      items,
      nextCursor: hasMore
        ? Buffer.from(JSON.stringify({ id: String(last.id) }), 'utf8').toString('base64url')
        : null,
    };
  });

  await app.listen({ port, host: '127.0.0.1' });
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await app.close();
      await pool.end();
    },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const env = process.env;
  const server = await startRawSameWork({
    databaseUrl: env.DATABASE_URL,
    jwtSecret: env.JWT_SECRET,
    issuer: env.JWT_ISSUER,
    audience: env.JWT_AUDIENCE,
    port: Number(env.PORT ?? 3901),
    poolSize: Number(env.DB_POOL_SIZE ?? 10),
  });
  process.stderr.write(`raw same-work baseline on ${server.url}\n`);
  const stop = () => void server.close().then(() => process.exit(0));
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
