// The application with every route group, as the local server, the tests and the benchmark use it.
// Lambda functions mount only their own group (see base-app.ts and lambdas/<role>.ts).
import type { Hono, MiddlewareHandler } from 'hono';
import { authFromEnv } from './auth.ts';
import { createBaseApp } from './base-app.ts';
import type { Services } from './services.ts';
import { adminRoutes } from '../routes/admin.ts';
import { produceRoutes } from '../routes/produce.ts';
import { fetchRoutes } from '../routes/fetch.ts';
import { groupRoutes } from '../routes/groups.ts';
import { UPSTASH_ERRORS, upstashRoutes } from '../routes/upstash.ts';

export type RouteGroup = 'admin' | 'produce' | 'fetch' | 'groups' | 'upstash';
const ROUTE_GROUPS: Record<RouteGroup, (services: Services) => Hono> = { admin: adminRoutes, produce: produceRoutes, fetch: fetchRoutes, groups: groupRoutes, upstash: upstashRoutes };

export function createApp(services: Services, groups: RouteGroup[] = ['admin', 'produce', 'fetch', 'groups', 'upstash'], auth: MiddlewareHandler | undefined = authFromEnv(services.storage)): Hono {
  return createBaseApp(groups.map((group) => ROUTE_GROUPS[group](services)), groups, auth, groups.includes('upstash') ? [UPSTASH_ERRORS] : []);
}
