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
import { Retention, expiredPrefix, type RetentionOptions } from './retention.ts';
import { segmentsAfter } from '../log/segment-index.ts';

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

  constructor(private readonly storage: Storage, private readonly sequencer: Sequencer, options: Partial<MaintenanceOptions> = {}) {
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
    let finished = false;
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
      report.trashed = await this.retention.emptyTrash(lease);
      finished = true;
      return report;
    } catch (err) {
      if (err instanceof PartitionLogMissingError) return { ...report, skipped: 'deleted' };
      throw err;
    } finally {
      // Only a pass that finished hands over at once. A failed one lets its lease run out, so the
      // next leader knows to look for what it left (an uploaded segment that never committed).
      if (finished) await this.leases.release(lease as Leadership);
    }
  }

  /**
   * The low-rate sweep for idle partitions: every partition that may have work (one read each, no
   * write for one that has none), then the collector. A failing partition does not stop the others;
   * the sweep throws at the end if any failed.
   */
  async sweep(): Promise<PartitionReport[]> {
    const topics = await listTopics(this.storage);
    const work = topics.flatMap((topic) => Array.from({ length: topic.partitions }, (_, partition) => ({ topic, partition })));
    const failures: unknown[] = [];
    const reports = await mapLimit(work, this.concurrency, async ({ topic, partition }) => {
      try {
        return (await this.mayHaveWork(topic, partition)) ? await this.maintainPartition(topic, partition) : undefined;
      } catch (err) {
        failures.push(err);
        return undefined;
      }
    });
    await this.collector.collect();
    if (failures.length > 0) throw new AggregateError(failures, `maintenance failed on ${failures.length} of ${work.length} partitions`);
    return reports.filter((r): r is PartitionReport => r !== undefined);
  }

  /**
   * Whether a pass could change anything: batches not compacted yet, trash, or an oldest segment
   * that retention (or the log start) removes. Reads only, so an idle partition costs no write.
   */
  private async mayHaveWork(topic: Topic, partition: number): Promise<boolean> {
    const pk = logPartitionKey(topic.topicId, partition);
    let view;
    try {
      view = await this.sequencer.read(pk, { withTail: false });
    } catch (err) {
      if (err instanceof PartitionLogMissingError) return false;
      throw err;
    }
    const { state } = view;
    // Uncompacted batches, trash, or a pass that did not finish (its lease was not released).
    if (view.highWatermark > Math.max(state.segmentsEnd, state.logStart) || state.trashed > 0 || state.leaseUntil > 0) return true;
    const [oldest] = await segmentsAfter(this.storage, pk, -1, 1);
    if (!oldest) return false;
    const retentionBytes = topic.config['retention.bytes'];
    return expiredPrefix([oldest], state.logStart, { retentionMs: topic.config['retention.ms'], retentionBytes: -1 }, this.retention.options.now()).length > 0
      || (retentionBytes >= 0 && state.segmentBytes - oldest.size >= retentionBytes);
  }
}
