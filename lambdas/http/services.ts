// All domain objects, wired together: the local server, the tests and the benchmark use this; each
// Lambda function builds only the part it serves (lambdas/<role>.ts).
import type { GroupOptions } from '../../lib/groups/coordinator.ts';
import { createGroupServices, type GroupServices } from '../../lib/groups/services.ts';
import { Maintenance, type MaintenanceOptions } from '../../lib/lifecycle/maintenance.ts';
import { Fetcher } from '../../lib/log/fetcher.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer, type SequencerOptions } from '../../lib/log/sequencer.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';

export interface Services {
  storage: Storage;
  sequencer: Sequencer;
  producer: Producer;
  fetcher: Fetcher;
  groups: GroupServices;
  /** Partition maintenance (compaction, retention, collection): the maintenance function's work. */
  maintenance: Maintenance;
}

export function createServices(storage: Storage = createStorage(), sequencerOptions: Partial<SequencerOptions> = {}, groupOptions: Partial<GroupOptions> = {}, maintenanceOptions: Partial<MaintenanceOptions> = {}): Services {
  const sequencer = new Sequencer(storage, sequencerOptions);
  const fetcher = new Fetcher(storage, sequencer);
  return {
    storage, sequencer, fetcher,
    producer: new Producer(storage, sequencer),
    groups: createGroupServices(storage, sequencer, fetcher, groupOptions),
    maintenance: new Maintenance(storage, sequencer, maintenanceOptions),
  };
}
