// Request authentication. QUEUE_AUTH_MODE says who checks callers:
//   iam      the Function URL (AWS_IAM auth) verifies SigV4 before the handler runs; the local
//            server, which has no such front door, is then open to its own machine only.
//   api-key  the Function URL is public (auth type NONE) and every request must carry a key that
//            this middleware verifies: header `x-api-key: <key>` or `Authorization: Bearer <key>`.
import type { MiddlewareHandler } from 'hono';
import { ApiKeyStore } from '../../lib/auth/api-key-store.ts';
import { apiKeysTableFromEnv } from '../../lib/auth/api-keys.ts';
import type { Storage } from '../../lib/storage.ts';
import { errorBody } from './errors.ts';

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
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(headers.header('authorization') ?? '');
  return bearer?.[1];
}

export function apiKeyAuth(store: ApiKeyStore): MiddlewareHandler {
  return async (c, next) => {
    const key = presentedApiKey(c.req);
    const caller = key ? await store.verify(key) : undefined;
    if (!caller) {
      const message = key ? 'the API key is invalid, expired or revoked' : 'an API key is required: send it as the x-api-key header or as Authorization: Bearer <key>';
      return c.json(errorBody('UNAUTHORIZED', message), 401, { 'WWW-Authenticate': 'Bearer' });
    }
    await next();
  };
}
