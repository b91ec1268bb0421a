// The consumer-group operations of one process, wired to one storage, log reader and clock.
import type { Fetcher } from '../log/fetcher.ts';
import type { Sequencer } from '../log/sequencer.ts';
import type { Storage } from '../storage.ts';
import { GroupAdmin } from './admin.ts';
import { Consumer } from './consumer.ts';
import { GroupCoordinator, type GroupOptions } from './coordinator.ts';
import { Membership } from './membership.ts';
import { Offsets } from './offsets.ts';

export interface GroupServices {
  membership: Membership;
  offsets: Offsets;
  consumer: Consumer;
  admin: GroupAdmin;
}

export function createGroupServices(storage: Storage, sequencer: Sequencer, fetcher: Fetcher, options: Partial<GroupOptions> = {}): GroupServices {
  const coordinator = new GroupCoordinator(storage, options);
  const offsets = new Offsets(coordinator, sequencer, fetcher);
  return {
    membership: new Membership(coordinator, offsets),
    offsets,
    consumer: new Consumer(coordinator, offsets, fetcher),
    admin: new GroupAdmin(coordinator, sequencer),
  };
}
