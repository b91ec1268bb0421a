// Idempotent producers and transactions of one process, wired to its storage and log.
import type { Offsets } from '../groups/offsets.ts';
import type { ProducerServices } from '../log/producer.ts';
import type { Sequencer } from '../log/sequencer.ts';
import type { Storage } from '../storage.ts';
import { Idempotence } from './idempotence.ts';
import { ProducerStore } from './producer-store.ts';
import { TransactionCoordinator } from './transactions.ts';

export interface ProducerIdServices extends ProducerServices {
  store: ProducerStore;
}

export function createProducerServices(storage: Storage, sequencer: Sequencer, offsets: Offsets, now: () => number = Date.now): ProducerIdServices {
  const store = new ProducerStore(storage, now);
  return { store, idempotence: new Idempotence(store), transactions: new TransactionCoordinator(store, sequencer, offsets) };
}
