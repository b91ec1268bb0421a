// The system under test as processes: the local server (`npm start`'s local/server.ts, which runs
// DynamoDB Local and s3rver) on a data directory, and optionally a second server with an offset
// clock on the same emulators. Each is its own process group, so kill -9 takes the whole tree.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { InjectedFault } from '../local/faults.ts';
import { sleep } from '../lib/retry.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const READY_TIMEOUT_MS = 90_000;
const START_ATTEMPTS = 3;

/**
 * Small writes below this many encoded bytes go inline: the workload's single-partition requests
 * (about 100 to 190 bytes) take the inline path, its multi-partition ones (270 and more) go
 * through S3 intake objects, so every fault meets both paths.
 */
const INLINE_MAX_BYTES = 200;

export interface ClusterOptions {
  dataDir: string;
  /** Every server's stderr goes here too (maintenance failures, for one), kept with the history. */
  serverLog: string;
  mainPort: number;
  skewedPort: number;
  clockOffsetMs: number;
  onFault(fault: InjectedFault, operation: string, time: number): void;
  log(line: string): void;
}

interface Server {
  child: ChildProcess;
  ready: Promise<string[]>;
}

export class Cluster {
  private main?: Server;
  private skewed?: Server;
  private endpoints?: { dynamo: string; s3: string };
  /** The QUEUE_FAULTS spec of the servers started next (none: no fault injection). */
  faults: string | undefined;
  /**
   * Start failures that a retry got past, for the report. The server repairs what a kill leaves in
   * its data directory by itself; the harness never does, so a start that cannot repair fails the run.
   */
  readonly startFailures: string[] = [];

  constructor(private readonly options: ClusterOptions) {
    // The servers are process groups of their own: they outlive this process unless killed here.
    process.once('exit', () => this.killAllSync());
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  }

  get mainUrl(): string {
    return `http://127.0.0.1:${this.options.mainPort}`;
  }

  get skewedUrl(): string {
    return `http://127.0.0.1:${this.options.skewedPort}`;
  }

  get skewedRunning(): boolean {
    return this.skewed !== undefined;
  }

  /** Starts the main server (and its emulators) on the data directory, retrying a failed start. */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const server = this.spawnServer(['--data-dir', this.options.dataDir], { PORT: String(this.options.mainPort) });
      try {
        const lines = await server.ready;
        const emulators = lines.map((l) => /^emulators: dynamodb (\S+) s3 (\S+)/.exec(l)).find(Boolean);
        if (!emulators) throw new Error('the server did not name its emulators');
        this.endpoints = { dynamo: emulators[1]!, s3: emulators[2]! };
        this.main = server;
        return;
      } catch (err) {
        killGroup(server.child);
        const message = err instanceof Error ? err.message : String(err);
        this.startFailures.push(message);
        this.options.log(`start attempt ${attempt} failed: ${message}`);
        if (attempt >= START_ATTEMPTS) throw err;
        await sleep(1000);
      }
    }
  }

  /** Starts the second server, whose sequencer and group clocks are offset, on the same emulators. */
  async startSkewed(): Promise<void> {
    if (!this.endpoints) throw new Error('start the main server first');
    const server = this.spawnServer([], {
      PORT: String(this.options.skewedPort),
      QUEUE_DYNAMODB_ENDPOINT: this.endpoints.dynamo,
      QUEUE_S3_ENDPOINT: this.endpoints.s3,
      QUEUE_CLOCK_OFFSET_MS: String(this.options.clockOffsetMs),
    });
    try {
      await server.ready;
      this.skewed = server;
    } catch (err) {
      killGroup(server.child);
      throw err;
    }
  }

  async killSkewed(): Promise<void> {
    const skewed = this.skewed;
    this.skewed = undefined;
    if (skewed) await killAndWait(skewed.child);
  }

  /** kill -9 of every process: both servers and the emulators. */
  async killAll(): Promise<void> {
    const servers = [this.main, this.skewed].filter((s): s is Server => s !== undefined);
    this.main = this.skewed = undefined;
    await Promise.all(servers.map((s) => killAndWait(s.child)));
  }

  private killAllSync(): void {
    for (const s of [this.main, this.skewed]) if (s) killGroup(s.child);
  }

  private spawnServer(args: string[], env: Record<string, string>): Server {
    const child = spawn(process.execPath, ['--import', 'tsx', 'local/server.ts', ...args], {
      cwd: ROOT,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, QUEUE_INLINE_MAX_BYTES: String(INLINE_MAX_BYTES), ...env, ...(this.faults ? { QUEUE_FAULTS: this.faults } : {}), AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE: '1' },
    });
    const lines: string[] = [];
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-4000);
      appendFileSync(this.options.serverLog, d);
    });
    const ready = new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the server did not start within ${READY_TIMEOUT_MS} ms\n${stderr}`)), READY_TIMEOUT_MS);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`the server exited (${code ?? signal}) before it was ready\n${lines.join('\n')}\n${stderr}`));
      });
      createInterface({ input: child.stdout! }).on('line', (line) => {
        const injected = /^injected (\{.*\})$/.exec(line);
        if (injected) {
          const { fault, operation, at } = JSON.parse(injected[1]!) as { fault: InjectedFault; operation: string; at: number };
          this.options.onFault(fault, operation, at);
          return;
        }
        lines.push(line);
        if (line.startsWith('queue API listening')) {
          clearTimeout(timer);
          resolve(lines);
        }
      });
    });
    ready.catch(() => undefined);
    return { child, ready };
  }
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

async function killAndWait(child: ChildProcess): Promise<void> {
  const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((r) => child.once('exit', () => r()));
  killGroup(child);
  await exited;
  // The JVM is a grandchild: give the kernel a moment to release its ports and files.
  await sleep(200);
}
