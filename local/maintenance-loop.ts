// The local server's stand-in for the deployed maintenance function: partitions written to are
// maintained a moment after the writes (as the log table's stream triggers it in AWS), and a
// sweep every minute expires retention on idle partitions and collects garbage (hourly in AWS).
import type { Maintenance } from '../lib/lifecycle/maintenance.ts';
import type { Topic } from '../lib/topics/topic-store.ts';

export interface MaintenanceLoopOptions {
  /** Activity is maintained this long after it was seen, in one batch. */
  debounceMs: number;
  sweepEveryMs: number;
  log: (message: string) => void;
}

export class MaintenanceLoop {
  private readonly dirty = new Map<string, { topic: Topic; partitions: Set<number> }>();
  private readonly options: MaintenanceLoopOptions;
  private debounce?: NodeJS.Timeout;
  private readonly sweeper: NodeJS.Timeout;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(private readonly maintenance: Maintenance, options: Partial<MaintenanceLoopOptions> = {}) {
    this.options = { debounceMs: 2000, sweepEveryMs: 60_000, log: console.error, ...options };
    this.sweeper = setInterval(() => this.enqueue(() => this.maintenance.sweep().then(() => undefined)), this.options.sweepEveryMs);
    this.sweeper.unref();
  }

  /** Records activity on a topic's partitions. */
  touch(topic: Topic, partitions: number[]): void {
    if (this.stopped) return;
    const entry = this.dirty.get(topic.topicId) ?? { topic, partitions: new Set<number>() };
    for (const p of partitions) entry.partitions.add(p);
    this.dirty.set(topic.topicId, entry);
    this.debounce ??= setTimeout(() => {
      this.debounce = undefined;
      const batch = [...this.dirty.values()];
      this.dirty.clear();
      this.enqueue(async () => {
        for (const { topic: t, partitions: ps } of batch) for (const p of ps) await this.maintenance.maintainPartition(t, p);
      });
    }, this.options.debounceMs);
  }

  /** Runs `work` after what is queued; one pass at a time, failures logged (the next pass retries). */
  private enqueue(work: () => Promise<void>): void {
    this.running = this.running.then(() => (this.stopped ? undefined : work())).catch((err: unknown) => this.options.log(`maintenance failed (it is retried on the next pass): ${err instanceof Error ? err.message : String(err)}`));
  }

  /** Stops scheduling and waits for the pass in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweeper);
    if (this.debounce) clearTimeout(this.debounce);
    await this.running;
  }
}
