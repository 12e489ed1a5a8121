// Prints an HS256 JWT for trying the example page by hand against `make run`:
//
//   node dev-token.mjs [userId] [hours]
//
// Signed with $JWT_SECRET, else the Makefile's development-only secret, so the
// server started by `make run` accepts it. Never use this with a real secret.
import { createHmac } from 'node:crypto';

const secret = process.env.JWT_SECRET || 'dev-only-jwt-secret-change-me-0123456789';
const user = process.argv[2] || 'aaaaaaaaaaaaaaaaaaaaaaa1';
const hours = Number(process.argv[3] || 8);
const now = Math.floor(Date.now() / 1000);
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url');
const body = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: user, iat: now, exp: now + hours * 3600 })}`;
console.log(`${body}.${createHmac('sha256', secret).update(body).digest('base64url')}`);
