// Fault injection for DynamoDB calls: fail a command before it is sent, or after it was applied
// (a lost response, the ambiguous case retries must survive).
import type { Storage } from '../../lib/storage.ts';

export type Fault = 'fail-before' | 'fail-after' | undefined;
type AnyCommand = { constructor: { name: string }; input: Record<string, unknown> };

export function withDynamoFaults(storage: Storage, decide: (command: AnyCommand) => Fault | Promise<Fault>): Storage {
  const send = storage.ddb.send.bind(storage.ddb) as (command: unknown) => Promise<unknown>;
  const ddb = Object.create(storage.ddb) as Storage['ddb'];
  ddb.send = (async (command: AnyCommand) => {
    const fault = await decide(command);
    if (fault === 'fail-before') throw Object.assign(new Error(`injected fault before ${command.constructor.name}`), { name: 'InjectedFault' });
    const result = await send(command);
    // Shaped like the SDK's client-side timeout: transient, so retriers try again.
    if (fault === 'fail-after') throw Object.assign(new Error(`injected lost response of ${command.constructor.name}`), { name: 'TimeoutError' });
    return result;
  }) as Storage['ddb']['send'];
  return { ...storage, ddb };
}

export function isPutOf(command: AnyCommand, kind: 'data' | 'gap'): boolean {
  return command.constructor.name === 'PutCommand' && (command.input.Item as Record<string, unknown> | undefined)?.kind === kind;
}
