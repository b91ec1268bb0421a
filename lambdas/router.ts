// Router function: the stack's single base URL (see http/router-app.ts). It holds no data
// permissions; its role may only invoke the four functions' URLs, given here by the construct.
import type { HttpRole } from '../cdk/bundling.ts';
import { authModeFromEnv } from './http/auth.ts';
import { bufferedHandler } from './http/lambda.ts';
import { routerApp } from './http/router-app.ts';
import { ROUTES } from './http/routing.ts';

const targets = Object.fromEntries([...new Set(ROUTES.map(([, role]) => role))].map((role) => {
  const url = process.env[`QUEUE_${role.toUpperCase()}_URL`];
  if (!url) throw new Error(`QUEUE_${role.toUpperCase()}_URL is not set`);
  return [role, url];
})) as Record<HttpRole, string>;

export const handler = bufferedHandler(routerApp(targets, authModeFromEnv()));
