// All domain objects, wired together: the local server, the tests and the benchmark use this; each
// Lambda function builds only the part it serves (lambdas/<role>.ts).
import type { GroupOptions } from '../../lib/groups/coordinator.ts';
import { createGroupServices, type GroupServices } from '../../lib/groups/services.ts';
import { Maintenance, type MaintenanceOptions } from '../../lib/lifecycle/maintenance.ts';
import { Fetcher } from '../../lib/log/fetcher.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer, type SequencerOptions } from '../../lib/log/sequencer.ts';
import { createProducerServices, type ProducerIdServices } from '../../lib/producers/services.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';

export interface Services {
  storage: Storage;
  sequencer: Sequencer;
  producer: Producer;
  /** Idempotent producers and transactions. */
  producers: ProducerIdServices;
  fetcher: Fetcher;
  groups: GroupServices;
  /** Partition maintenance (compaction, retention, collection): the maintenance function's work. */
  maintenance: Maintenance;
}

export function createServices(storage: Storage = createStorage(), sequencerOptions: Partial<SequencerOptions> = {}, groupOptions: Partial<GroupOptions> = {}, maintenanceOptions: Partial<MaintenanceOptions> = {}): Services {
  const log = createLogServices(storage, sequencerOptions, groupOptions);
  const maintenance = new Maintenance(storage, log.sequencer, maintenanceOptions);
  maintenance.compactor.onTransactionHold((pk, pin) => log.producers.transactions.unblock(pk, pin));
  return { ...log, storage, maintenance };
}

/**
 * What the produce, fetch and groups functions serve: the log, groups and producers, wired so that
 * a read_committed reader held by a timed-out transaction gets it aborted.
 */
export function createLogServices(storage: Storage, sequencerOptions: Partial<SequencerOptions> = {}, groupOptions: Partial<GroupOptions> = {}): Omit<Services, 'storage' | 'maintenance'> {
  const sequencer = new Sequencer(storage, sequencerOptions);
  const fetcher = new Fetcher(storage, sequencer);
  const groups = createGroupServices(storage, sequencer, fetcher, groupOptions);
  const producers = createProducerServices(storage, sequencer, groups.offsets);
  fetcher.onBlockedReader((pk, pin) => producers.transactions.unblock(pk, pin));
  return { sequencer, fetcher, groups, producers, producer: new Producer(storage, sequencer, producers) };
}
