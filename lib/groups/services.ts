// The consumer-group operations of one process, wired to one storage, log reader and clock.
import type { Fetcher } from '../log/fetcher.ts';
import type { Sequencer } from '../log/sequencer.ts';
import type { Storage } from '../storage.ts';
import { GroupAdmin } from './admin.ts';
import { Consumer } from './consumer.ts';
import { GroupCoordinator, type GroupOptions } from './coordinator.ts';
import { NamedInstances } from './instances.ts';
import { Membership } from './membership.ts';
import { Offsets } from './offsets.ts';

export interface GroupServices {
  membership: Membership;
  offsets: Offsets;
  consumer: Consumer;
  admin: GroupAdmin;
  instances: NamedInstances;
}

export function createGroupServices(storage: Storage, sequencer: Sequencer, fetcher: Fetcher, options: Partial<GroupOptions> = {}): GroupServices {
  const coordinator = new GroupCoordinator(storage, options);
  const offsets = new Offsets(coordinator, sequencer, fetcher);
  const membership = new Membership(coordinator, offsets);
  const consumer = new Consumer(coordinator, offsets, fetcher);
  return {
    membership,
    offsets,
    consumer,
    admin: new GroupAdmin(coordinator, sequencer),
    instances: new NamedInstances(coordinator, membership, consumer),
  };
}
