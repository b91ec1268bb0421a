// A minimal transactional producer over HTTP API v1 for the transaction tests: it numbers each
// partition's records as the server expects and keeps the numbering of successful sends only.
import { expect } from 'vitest';
import type { Api } from '../api/client.ts';

export interface Identity {
  producerId: number;
  producerEpoch: number;
}

declare module '../api/client.ts' {
  interface FetchReply {
    lastStableOffset: number;
    abortedTransactions: Array<{ producerId: number; firstOffset: number }>;
  }
}

export class TxnProducer {
  readonly sequences = new Map<string, number>();
  constructor(private readonly api: Api, readonly transactionalId: string, public identity: Identity) {}

  static async init(api: Api, transactionalId: string, timeoutMs?: number): Promise<TxnProducer> {
    const res = await api.call('POST', '/v1/producers', { transactionalId, ...(timeoutMs && { transactionTimeoutMs: timeoutMs }) });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    return new TxnProducer(api, transactionalId, res.body);
  }

  async send(name: string, values: string[], partition = 0) {
    const key = `${name}/${partition}`;
    const baseSequence = this.sequences.get(key) ?? 0;
    const res = await this.api.produceRaw(name, { records: values.map((value) => ({ value, partition })), ...this.identity, sequences: [{ partition, baseSequence }], transactionalId: this.transactionalId });
    if (res.status === 200) this.sequences.set(key, baseSequence + values.length);
    return res;
  }

  end(outcome: 'commit' | 'abort') {
    return this.api.call('POST', `/v1/transactions/${this.transactionalId}/${outcome}`, this.identity);
  }
}

/** Every value a read_committed reader gets from the start of the partition up to its last stable offset. */
export async function committedValues(api: Api, name: string, partition = 0): Promise<string[]> {
  const values: string[] = [];
  for (let offset = 0; ;) {
    const page = await api.fetch(name, partition, { offset, isolation: 'read_committed', waitMs: 0 });
    values.push(...page.records.map((r) => r.value!));
    if (page.nextOffset === offset || page.nextOffset >= page.lastStableOffset) return values;
    offset = page.nextOffset;
  }
}
