// How each Lambda handler is bundled: shared by the CDK construct and by `bench/bundles.ts`, so the
// measured bundles are the deployed ones. The AWS SDK is bundled too (no externals): its version is
// then pinned by package-lock.json rather than by the Lambda runtime, and unused code is tree-shaken.
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

/** The functions behind Function URLs, one per route group. */
export type HttpRole = 'produce' | 'fetch' | 'admin' | 'groups' | 'upstash';

export const HTTP_ROLES: readonly HttpRole[] = ['produce', 'fetch', 'admin', 'groups', 'upstash'];

/** Every deployed function: the HTTP ones and maintenance (invoked by the log table's stream and a schedule). */
export type FunctionRole = HttpRole | 'maintenance';

export const FUNCTION_ROLES: readonly FunctionRole[] = [...HTTP_ROLES, 'maintenance'];

/** Every deployed handler: the functions with data access, and the router in front of the HTTP ones (no data access). */
export type DeployedHandler = FunctionRole | 'router';

/** Absolute path of each role's Lambda entry module. */
export function handlerEntry(role: DeployedHandler): string {
  return fileURLToPath(new URL(`../lambdas/${role}.ts`, import.meta.url));
}

/** The repository root, where package-lock.json lives (esbuild resolves modules from here). */
export const PROJECT_ROOT = fileURLToPath(new URL('..', import.meta.url));

export const HANDLER_BUNDLE = {
  format: 'esm',
  target: 'node22',
  platform: 'node',
  minify: true,
  // Prefer the ES module builds of dependencies (the SDK's dist-es), which tree-shake far better.
  mainFields: ['module', 'main'],
  externalModules: [] as string[],
  // CommonJS code inside an ESM bundle still calls require() for Node built-ins.
  banner: "import { createRequire as __queueCreateRequire } from 'node:module'; const require = __queueCreateRequire(import.meta.url);",
} as const;

/** Bundles one handler exactly as the construct deploys it; returns esbuild's metafile. */
export async function bundleHandler(role: FunctionRole, outfile: string): Promise<esbuild.Metafile> {
  const result = await esbuild.build({
    entryPoints: [handlerEntry(role)],
    absWorkingDir: PROJECT_ROOT,
    outfile,
    bundle: true,
    platform: HANDLER_BUNDLE.platform,
    format: HANDLER_BUNDLE.format,
    target: HANDLER_BUNDLE.target,
    minify: HANDLER_BUNDLE.minify,
    mainFields: [...HANDLER_BUNDLE.mainFields],
    external: [...HANDLER_BUNDLE.externalModules],
    banner: { js: HANDLER_BUNDLE.banner },
    metafile: true,
    logLevel: 'error',
  });
  return result.metafile;
}
