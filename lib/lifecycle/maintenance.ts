// One maintenance pass over a partition, as its leader: expire what retention removes, finish any
// interrupted drop, roll due segments, empty the trash. Triggered by activity (the log table's
// stream in AWS, the local server's produce hook) and by a low-rate sweep for idle partitions;
// nothing runs while nobody writes.
import { PartitionLogMissingError } from '../errors.ts';
import { logPartitionKey } from '../log/keys.ts';
import type { Sequencer } from '../log/sequencer.ts';
import type { Storage } from '../storage.ts';
import { listTopics, type Topic } from '../topics/topic-store.ts';
import { Collector, type CollectorOptions } from './collector.ts';
import { Compactor, type CompactorOptions } from './compactor.ts';
import { Leases, type Leadership, type LeaseOptions } from './lease.ts';
import { mapLimit } from './map-limit.ts';
import { Retention, type RetentionOptions } from './retention.ts';

export interface MaintenanceOptions {
  lease: Partial<LeaseOptions>;
  compactor: Partial<CompactorOptions>;
  retention: Partial<RetentionOptions>;
  collector: Partial<CollectorOptions>;
  /** Segments one pass rolls at most (a long backlog is worked off over several passes). */
  maxRollsPerPass: number;
  /** Partitions maintained at once by a sweep. */
  concurrency: number;
}

export interface PartitionReport {
  topic: string;
  partition: number;
  /** Not maintained: another leader holds the lease, or the topic is gone. */
  skipped?: 'leased' | 'deleted';
  /** Uploads of an earlier leader that never committed, collected after a takeover. */
  strays: number;
  expired: number;
  rolled: number;
  dropped: number;
  trashed: number;
}

export class Maintenance {
  readonly leases: Leases;
  readonly compactor: Compactor;
  readonly retention: Retention;
  readonly collector: Collector;
  private readonly maxRollsPerPass: number;
  private readonly concurrency: number;

  constructor(private readonly storage: Storage, sequencer: Sequencer, options: Partial<MaintenanceOptions> = {}) {
    this.leases = new Leases(storage, options.lease);
    this.compactor = new Compactor(storage, sequencer, this.leases, options.compactor);
    this.retention = new Retention(storage, this.leases, this.compactor, options.retention);
    this.collector = new Collector(storage, this.compactor, options.collector);
    this.maxRollsPerPass = options.maxRollsPerPass ?? 8;
    this.concurrency = options.concurrency ?? 8;
  }

  async maintainPartition(topic: Topic, partition: number): Promise<PartitionReport> {
    const report: PartitionReport = { topic: topic.name, partition, strays: 0, expired: 0, rolled: 0, dropped: 0, trashed: 0 };
    const pk = logPartitionKey(topic.topicId, partition);
    let lease = await this.leases.acquire(pk);
    if (!lease) return { ...report, skipped: 'leased' };
    try {
      const config = topic.config;
      if (lease.takenOver) report.strays = await this.compactor.collectStrays(lease);
      report.expired = await this.retention.expire(lease, await this.leases.stateOf(pk), { retentionMs: config['retention.ms'], retentionBytes: config['retention.bytes'] });
      for (;;) {
        lease = await this.leases.renew(lease);
        report.dropped += await this.compactor.dropCompacted(lease, await this.leases.stateOf(pk));
        if (report.rolled >= this.maxRollsPerPass) break;
        if (!(await this.compactor.roll(lease, { segmentBytes: config['segment.bytes'], segmentMs: config['segment.ms'] }))) break;
        report.rolled++;
      }
      report.trashed = await this.retention.emptyTrash(lease, (await this.leases.stateOf(pk)).trash);
      return report;
    } catch (err) {
      if (err instanceof PartitionLogMissingError) return { ...report, skipped: 'deleted' };
      throw err;
    } finally {
      await this.leases.release(lease as Leadership);
    }
  }

  /** Every partition of every topic, then the collector: the low-rate sweep for idle partitions. */
  async sweep(): Promise<PartitionReport[]> {
    const topics = await listTopics(this.storage);
    const work = topics.flatMap((topic) => Array.from({ length: topic.partitions }, (_, partition) => ({ topic, partition })));
    const reports = await mapLimit(work, this.concurrency, ({ topic, partition }) => this.maintainPartition(topic, partition));
    await this.collector.collect();
    return reports;
  }
}
