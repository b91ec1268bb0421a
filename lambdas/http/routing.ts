// Which function serves a path: the one routing table of the single base URL (the router function
// forwards each request by it). test/lambdas/router.test.ts checks that every route each function's
// app serves is routed to that function, so a new route is added here and in its route group.
import type { HttpRole } from '../../cdk/bundling.ts';

/** First match wins; by path only, so a wrong method still reaches the function that answers 405 for it. */
export const ROUTES: ReadonlyArray<readonly [pattern: RegExp, role: HttpRole]> = [
  [/^\/v1\/topics\/[^/]+\/records$/, 'produce'],
  // Idempotent producers and transactions: the produce function serves them.
  [/^\/v1\/(producers|transactions)(\/|$)/, 'produce'],
  [/^\/v1\/topics\/[^/]+\/partitions\/[^/]+\/(records|offsets)$/, 'fetch'],
  [/^\/v1\/groups(\/|$)/, 'groups'],
  // Upstash Kafka's REST API (lambdas/routes/upstash.ts).
  [/^\/(produce|webhook|fetch|consume|commit|committed|topics|consumers|delete-consumer|offsets)(\/|$)/, 'upstash'],
  // Topic administration, health, and the 404 of every unknown path.
  [/^/, 'admin'],
];

export function routeOf(path: string): HttpRole {
  return ROUTES.find(([pattern]) => pattern.test(path))![1];
}
