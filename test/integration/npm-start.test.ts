// `npm start` as a developer runs it: the real process tree (npm, node, the DynamoDB Local JVM),
// killed and signalled for real. Every process a test started is killed afterwards, even on failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { sleep } from '../../lib/retry.ts';
import { freePort } from '../../local/stack.ts';

const dataDirs: string[] = [];
const started = new Set<number>();
afterEach(() => {
  for (const pid of started) killIfAlive(pid);
  started.clear();
});
afterAll(() => dataDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'queue-npm-start-'));
  dataDirs.push(dir);
  return dir;
}

function killIfAlive(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** `pid` and all its descendants, with their command lines. */
function processTree(pid: number): Array<{ pid: number; command: string }> {
  const rows = spawnSync('ps', ['-A', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' }).stdout.trim().split('\n')
    .map((line) => line.trim().match(/^(\d+)\s+(\d+)\s+(.*)$/)!)
    .map(([, p, pp, command]) => ({ pid: Number(p), ppid: Number(pp), command: command! }));
  const tree = [pid];
  for (let i = 0; i < tree.length; i++) tree.push(...rows.filter((r) => r.ppid === tree[i]).map((r) => r.pid));
  return tree.map((p) => ({ pid: p, command: rows.find((r) => r.pid === p)?.command ?? '' }));
}

interface Started {
  npm: ChildProcess;
  url: string;
  /** Every process of the tree once it listens: npm, the server, the JVM's watchdog, the JVM. */
  tree: Array<{ pid: number; command: string }>;
  output(): string;
}

/** Starts `npm start` and waits until it listens, or only until the JVM runs (`until: 'starting'`). */
async function npmStart(dataDir: string, until: 'listening' | 'starting' = 'listening'): Promise<Started> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(port) };
  for (const name of ['AWS_ENDPOINT_URL', 'QUEUE_DYNAMODB_ENDPOINT', 'QUEUE_S3_ENDPOINT']) delete env[name];
  const npm = spawn('npm', ['start', '--', '--data-dir', dataDir], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  started.add(npm.pid!);
  let output = '';
  npm.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  npm.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const url = `http://127.0.0.1:${port}`;
  const ready = () => (until === 'listening' ? output.includes(`queue API listening on ${url}`) : processTree(npm.pid!).some((p) => p.command.startsWith('java ')));
  while (!ready()) {
    if (npm.exitCode !== null) throw new Error(`npm start exited with code ${npm.exitCode}:\n${output}`);
    await sleep(100);
  }
  const tree = processTree(npm.pid!);
  for (const { pid } of tree) started.add(pid);
  return { npm, url, tree, output: () => output };
}

const exited = (child: ChildProcess) => new Promise<number | null>((r) => (child.exitCode !== null || child.signalCode !== null ? r(child.exitCode) : child.once('exit', r)));

async function answers(url: string): Promise<boolean> {
  try {
    await (await fetch(`${url}/v1/topics`)).arrayBuffer();
    return true;
  } catch {
    return false;
  }
}

async function post(url: string, path: string, body: unknown): Promise<Response> {
  return fetch(`${url}${path}`, { method: 'POST', body: JSON.stringify(body) });
}

/** Every record of a partition, by offset. */
async function readPartition(url: string, topic: string, partition: number): Promise<Map<number, string>> {
  const records = new Map<number, string>();
  for (let offset = 0; ;) {
    const page = (await (await fetch(`${url}/v1/topics/${topic}/partitions/${partition}/records?offset=${offset}`)).json()) as { records: Array<{ offset: number; value: string }>; nextOffset: number; highWatermark: number };
    for (const r of page.records) records.set(r.offset, r.value);
    if (page.nextOffset >= page.highWatermark) return records;
    offset = page.nextOffset;
  }
}

/** SIGKILL to every process of the tree at once: what a crash, the OOM killer or `kill -9` does. */
async function killTree(run: Started): Promise<void> {
  for (const { pid } of processTree(run.npm.pid!)) killIfAlive(pid);
  await exited(run.npm);
}

describe('npm start', { timeout: 120_000 }, () => {
  it('after kill -9 of the whole tree in the middle of producing, a restart on the same data serves every acknowledged record', async () => {
    const dataDir = newDataDir();
    const first = await npmStart(dataDir);
    expect((await post(first.url, '/v1/topics', { name: 'crash', partitions: 2 })).status).toBe(201);
    const acknowledged: Array<{ partition: number; offset: number; value: string }> = [];
    let killed = false;
    // Four producers, each on and on until the kill cuts their requests off.
    const producers = [0, 1, 2, 3].map(async (writer) => {
      for (let n = 0; !killed; n++) {
        const value = `w${writer}-${n}`;
        const res = await post(first.url, '/v1/topics/crash/records', { records: [{ value, partition: writer % 2 }] }).catch(() => undefined);
        if (res?.status !== 200) continue;
        const { offsets } = (await res.json()) as { offsets: Array<{ partition: number; offset: number }> };
        acknowledged.push({ ...offsets[0]!, value });
      }
    });
    while (acknowledged.length < 20) await sleep(10);
    await killTree(first);
    killed = true;
    await Promise.all(producers);

    const second = await npmStart(dataDir);
    const stored = [await readPartition(second.url, 'crash', 0), await readPartition(second.url, 'crash', 1)];
    for (const { partition, offset, value } of acknowledged) expect(stored[partition]!.get(offset)).toBe(value);
  });

  it('restarts after a kill left half-written S3 files: torn metadata of an acknowledged object, uploads cut off', async () => {
    const dataDir = newDataDir();
    const first = await npmStart(dataDir);
    expect((await post(first.url, '/v1/topics', { name: 'torn', partitions: 1 })).status).toBe(201);
    // Larger than a small write, so that it is an object in S3.
    const kept = 'kept'.padEnd(8192, '.');
    expect((await post(first.url, '/v1/topics/torn/records', { records: [{ value: kept }] })).status).toBe(200);
    await killTree(first);

    const bucketDir = join(dataDir, 's3', 'queue-segments');
    const files = (readdirSync(bucketDir, { recursive: true }) as string[]).map((f) => join(bucketDir, f));
    const metadata = files.find((f) => f.endsWith('._S3rver_metadata.json'))!;
    // s3rver answers 500 to HeadBucket over such a file: before the repair, this restart failed.
    truncateSync(metadata, 0);
    // A PUT cut off after its bytes, and one cut off inside them (a repeated key, old md5 kept).
    const objectDir = join(metadata, '..');
    writeFileSync(join(objectDir, 'cut-after-bytes.seg._S3rver_object'), 'bytes');
    writeFileSync(join(objectDir, 'cut-inside-bytes.seg._S3rver_object'), 'by');
    writeFileSync(join(objectDir, 'cut-inside-bytes.seg._S3rver_object.md5'), 'a0c4b6e3d1a4b0e1e5c6d0b9f0a8e1c2');

    const second = await npmStart(dataDir);
    expect(second.output()).toMatch(/repaired S3 data after an interrupted run: .*cut-after-bytes\.seg: removed/);
    expect([...(await readPartition(second.url, 'torn', 0)).values()]).toEqual([kept]);
  });

  it.each([
    ['SIGTERM', 'npm'],
    ['SIGKILL', 'npm'],
    ['SIGKILL', 'server'],
  ] as const)('%s to the %s process stops the server and DynamoDB Local', async (signal, target) => {
    const run = await npmStart(newDataDir());
    expect(run.tree.filter((p) => p.command.startsWith('java '))).toHaveLength(1);
    const server = run.tree.find((p) => p.command.includes('local/server.ts'))!;
    killIfAlive(target === 'npm' ? run.npm.pid! : server.pid, signal);
    // Bounded by the test's timeout.
    while (run.tree.some((p) => isAlive(p.pid))) await sleep(100);
    expect(await answers(run.url)).toBe(false);
  });

  it('SIGKILL to the npm process while the server is still starting stops everything', async () => {
    const run = await npmStart(newDataDir(), 'starting');
    killIfAlive(run.npm.pid!, 'SIGKILL');
    while (run.tree.some((p) => isAlive(p.pid))) await sleep(100);
    expect(await answers(run.url)).toBe(false);
  });
});
