// Bundle size and cold-start import cost of each Lambda handler, bundled exactly as the CDK construct
// bundles it (options shared through cdk/bundling.ts). Cold starts are what users feel: Lambda's
// init phase downloads, parses and evaluates this one file before the first request.
//   npm run bench:bundles    this section alone (npm run bench includes it)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { bundleHandler, FUNCTION_ROLES, HANDLER_BUNDLE, type FunctionRole } from '../cdk/bundling.ts';

const TARGET_BYTES = 400 * 1024;
const IMPORT_RUNS = 5;

/** What the bytes of a bundle are, by where they come from. */
const ORIGINS: Array<[string, RegExp]> = [
  ['awsSdk', /node_modules\/@(aws-sdk|smithy|aws-crypto)\//],
  ['zod', /node_modules\/zod\//],
  ['hono', /node_modules\/hono\//],
  ['otherDependencies', /node_modules\//],
  ['project', /./],
];

interface BundleResult {
  bytes: number;
  withinTarget: boolean;
  bytesByOrigin: Record<string, number>;
  importMedianMs: number;
  importRunsMs: number[];
}

async function bundle(role: FunctionRole, outdir: string): Promise<{ file: string; bytes: number; bytesByOrigin: Record<string, number> }> {
  const file = join(outdir, role, 'index.mjs');
  const metafile = await bundleHandler(role, file);
  const output = Object.values(metafile.outputs)[0]!;
  const bytesByOrigin = Object.fromEntries(ORIGINS.map(([name]) => [name, 0]));
  for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
    const [origin] = ORIGINS.find(([, pattern]) => pattern.test(input))!;
    bytesByOrigin[origin]! += bytesInOutput;
  }
  return { file, bytes: output.bytes, bytesByOrigin };
}

/**
 * Milliseconds to import (load, parse, evaluate, initialise) the bundle in a fresh Node process,
 * as Lambda's init phase does. The produce handler needs the runtime's `awslambda` global.
 */
function importMs(file: string): number {
  const script = `
    globalThis.awslambda = { streamifyResponse: (fn) => fn, HttpResponseStream: { from: (stream) => stream } };
    const start = performance.now();
    await import(${JSON.stringify(pathToFileURL(file).href)});
    process.stdout.write(String(performance.now() - start));`;
  const env = { PATH: process.env.PATH, AWS_REGION: 'us-east-1', QUEUE_BUCKET: 'bench', QUEUE_AUTH_MODE: 'iam' };
  return Number(execFileSync(process.execPath, ['--no-warnings', '--input-type=module', '-e', script], { env, encoding: 'utf8' }));
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(0)} KB`;

export async function benchBundles(): Promise<{ markdown: string; json: Record<string, unknown> }> {
  const outdir = mkdtempSync(join(tmpdir(), 'queue-bundles-'));
  try {
    const functions = {} as Record<FunctionRole, BundleResult>;
    for (const role of FUNCTION_ROLES) {
      const { file, bytes, bytesByOrigin } = await bundle(role, outdir);
      const importRunsMs = Array.from({ length: IMPORT_RUNS }, () => Number(importMs(file).toFixed(1)));
      functions[role] = { bytes, withinTarget: bytes <= TARGET_BYTES, bytesByOrigin, importMedianMs: median(importRunsMs), importRunsMs };
    }
    const rows = FUNCTION_ROLES.map((role) => {
      const f = functions[role];
      const o = f.bytesByOrigin;
      return `| ${role} | ${kib(f.bytes)} | ${f.withinTarget ? 'yes' : '**no**'} | ${kib(o.awsSdk!)} | ${kib(o.zod!)} | ${kib(o.hono!)} | ${kib(o.otherDependencies!)} | ${kib(o.project!)} | ${f.importMedianMs.toFixed(0)} ms |`;
    });
    const markdown = [
      `Minified ESM bundles (esbuild, ${HANDLER_BUNDLE.target}, AWS SDK bundled), target at most ${kib(TARGET_BYTES)} each; import + init = median of ${IMPORT_RUNS} fresh \`node ${process.version}\` processes on this machine (Lambda adds its own runtime start).`,
      '',
      '| function | minified | within target | AWS SDK | zod | hono | other deps | project | import + init |',
      '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...rows,
    ].join('\n');
    return { markdown, json: { targetBytes: TARGET_BYTES, node: process.version, importRuns: IMPORT_RUNS, functions } };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log((await benchBundles()).markdown);
}
