// Request authentication. QUEUE_AUTH_MODE says who checks callers:
//   iam      the Function URL (AWS_IAM auth) verifies SigV4 before the handler runs; the local
//            server, which has no such front door, is then open to its own machine only.
//   api-key  the Function URL is public (auth type NONE) and every request must carry a key that
//            this middleware verifies: header `x-api-key: <key>`, `Authorization: Bearer <key>`, or
//            HTTP Basic with the key as the password and any user name (what Upstash Kafka clients send).
import type { MiddlewareHandler } from 'hono';
import { ApiKeyStore } from '../../lib/auth/api-key-store.ts';
import { apiKeysTableFromEnv } from '../../lib/auth/api-keys.ts';
import { UnauthorizedError } from '../../lib/errors.ts';
import type { Storage } from '../../lib/storage.ts';

export type AuthMode = 'iam' | 'api-key';

export function authModeFromEnv(env: NodeJS.ProcessEnv = process.env): AuthMode {
  const mode = env.QUEUE_AUTH_MODE ?? 'iam';
  // Fail closed: a typo must not silently leave a public endpoint unchecked.
  if (mode !== 'iam' && mode !== 'api-key') throw new Error(`QUEUE_AUTH_MODE must be "iam" or "api-key", got ${JSON.stringify(mode)}`);
  return mode;
}

/** The middleware the configured mode needs in the handler, if any. */
export function authFromEnv(storage: Storage, env: NodeJS.ProcessEnv = process.env): MiddlewareHandler | undefined {
  return authModeFromEnv(env) === 'api-key' ? apiKeyAuth(new ApiKeyStore(storage.ddb, apiKeysTableFromEnv(env))) : undefined;
}

export function presentedApiKey(headers: { header(name: string): string | undefined }): string | undefined {
  const direct = headers.header('x-api-key');
  if (direct) return direct.trim();
  const authorization = headers.header('authorization') ?? '';
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+(\S+)\s*$/i.exec(authorization);
  if (!basic) return undefined;
  const credentials = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = credentials.indexOf(':');
  return colon >= 0 ? credentials.slice(colon + 1) : undefined;
}

export function apiKeyAuth(store: ApiKeyStore): MiddlewareHandler {
  return async (c, next) => {
    const key = presentedApiKey(c.req);
    const caller = key ? await store.verify(key) : undefined;
    if (!caller) {
      c.header('WWW-Authenticate', 'Bearer');
      throw new UnauthorizedError(key ? 'the API key is invalid, expired or revoked' : 'an API key is required: send it as the x-api-key header, as Authorization: Bearer <key>, or as the password of HTTP Basic auth');
    }
    await next();
  };
}
