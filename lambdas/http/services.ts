// The domain objects a process needs, created once and reused across Lambda invocations.
import { Fetcher } from '../../lib/log/fetcher.ts';
import { Producer } from '../../lib/log/producer.ts';
import { Sequencer, type SequencerOptions } from '../../lib/log/sequencer.ts';
import { createStorage, type Storage } from '../../lib/storage.ts';

export interface Services {
  storage: Storage;
  sequencer: Sequencer;
  producer: Producer;
  fetcher: Fetcher;
}

export function createServices(storage: Storage = createStorage(), sequencerOptions: Partial<SequencerOptions> = {}): Services {
  const sequencer = new Sequencer(storage, sequencerOptions);
  return { storage, sequencer, producer: new Producer(storage, sequencer), fetcher: new Fetcher(storage, sequencer) };
}

let shared: Services | undefined;
export function sharedServices(): Services {
  return (shared ??= createServices());
}
