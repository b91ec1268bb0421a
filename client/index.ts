// The queue's TypeScript client, shaped like kafkajs:
//   const q = new Queue({ url, auth });
//   const producer = q.producer({ lingerMs: 5 }); await producer.send({ topic, messages: [{ key, value }] });
//   const consumer = q.consumer({ groupId }); await consumer.subscribe({ topics, fromBeginning: true });
//   await consumer.run({ eachMessage: async ({ message }) => ... });
//   const admin = q.admin(); await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] });
// It talks HTTP to one base URL (the local server, or a deployed stack's Url output) and has no
// server code in it.
import { Admin } from './admin.ts';
import { Consumer, type ConsumerOptions } from './consumer.ts';
import { Producer, type ProducerOptions } from './producer.ts';
import { Transport, type TransportOptions } from './transport.ts';

export type QueueOptions = TransportOptions;

export class Queue {
  /** Shared by everything this Queue creates: `transport.requests` counts the requests sent. */
  readonly transport: Transport;

  constructor(options: QueueOptions) {
    this.transport = new Transport(options);
  }

  producer(options: ProducerOptions = {}): Producer {
    return new Producer(this.transport, options);
  }

  consumer(options: ConsumerOptions): Consumer {
    return new Consumer(this.transport, options);
  }

  admin(): Admin {
    return new Admin(this.transport);
  }
}

export { Admin, Consumer, Producer, Transport };
export type { GroupDescription, ResetTarget, TopicDescription } from './admin.ts';
export { signerFor, sigV4Headers, type Auth, type AwsCredentials } from './auth.ts';
export type { Batch, ConsumerOptions, EachBatchPayload, EachMessagePayload, KafkaMessage, RunConfig, TopicPartitions } from './consumer.ts';
export * from './errors.ts';
export { murmur2, partitionForKey } from './partitioner.ts';
export type { Acks, Message, ProducerOptions, ProducerRecord, RecordMetadata } from './producer.ts';
export type { DirectUrls, RetryOptions, TransportOptions } from './transport.ts';
