// The local app served over HTTP on a free port, with storage isolated per call: what the client
// and the CLI talk to in these tests.
import { serve } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import { createServices, type Services } from '../../lambdas/http/services.ts';
import { createLocalApp } from '../../local/local-app.ts';
import { testStorage } from '../support/stack.ts';

export interface TestServer {
  url: string;
  services: Services;
  close(): Promise<void>;
}

export async function startServer(): Promise<TestServer> {
  const services = createServices(await testStorage());
  // The origin guard needs the port before the server has one; clients send no Origin anyway.
  const server = serve({ fetch: createLocalApp(services, 0).fetch, port: 0, hostname: '127.0.0.1' });
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, services, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
