// Fault injection between our code and AWS, for the fault-injection suite (jepsen/). Off unless the
// local server is started with QUEUE_FAULTS; never part of a Lambda bundle.
//   QUEUE_FAULTS="seed=7,delay=0.1,delayMs=300,lose=0.02,throttle=0.03"
// Each rate is the probability per attempt of one call, drawn from a generator seeded by `seed`:
//   delay     the call waits up to delayMs before it is sent;
//   lose      the call is applied, then its response is replaced by a client-side timeout (the
//             ambiguous case: the SDK's and our retriers try again a call that already happened);
//   throttle  the call fails with ThrottlingException before it is sent (nothing applied).
import { aroundEachAttempt, type AttemptMiddleware } from '../lib/aws/clients.ts';
import { sleep } from '../lib/retry.ts';
import type { Storage } from '../lib/storage.ts';

export interface FaultRates {
  seed: number;
  delay: number;
  delayMs: number;
  lose: number;
  throttle: number;
}

export type InjectedFault = 'delay' | 'lose' | 'throttle';

const RATES = ['delay', 'lose', 'throttle'] as const;
const DEFAULTS: FaultRates = { seed: 1, delay: 0, delayMs: 200, lose: 0, throttle: 0 };

export function parseFaults(spec: string): FaultRates {
  const rates = { ...DEFAULTS };
  for (const part of spec.split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name, raw] = part.split('=');
    const value = Number(raw);
    if (!name || !(name in rates) || raw === undefined || !Number.isFinite(value) || value < 0) {
      throw new Error(`QUEUE_FAULTS: "${part}" is not one of seed=<int>, delayMs=<ms>, ${RATES.map((r) => `${r}=<0..1>`).join(', ')}`);
    }
    if ((RATES as readonly string[]).includes(name) && value > 1) throw new Error(`QUEUE_FAULTS: ${name} is a probability, at most 1`);
    rates[name as keyof FaultRates] = value;
  }
  return rates;
}

/** mulberry32: a small seeded generator, so a run's faults can be replayed from its seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function faultMiddleware(rates: FaultRates, report: (fault: InjectedFault, operation: string) => void): AttemptMiddleware {
  const random = seededRandom(rates.seed);
  return async (operation, send) => {
    if (random() < rates.delay) {
      report('delay', operation);
      await sleep(Math.floor(random() * rates.delayMs));
    }
    if (random() < rates.throttle) {
      report('throttle', operation);
      // Shaped like the service's answer, so the SDK classifies it as throttling and backs off.
      throw Object.assign(new Error(`injected throttling of ${operation}`), { name: 'ThrottlingException', $fault: 'client', $metadata: { httpStatusCode: 400 } });
    }
    const lose = random() < rates.lose;
    const output = await send();
    if (lose) {
      report('lose', operation);
      throw Object.assign(new Error(`injected lost response of ${operation}`), { name: 'TimeoutError' });
    }
    return output;
  };
}

/** Attaches the fault layer to both AWS clients of `storage`. */
export function injectFaults(storage: Storage, rates: FaultRates, report: (fault: InjectedFault, operation: string) => void): void {
  const middleware = faultMiddleware(rates, report);
  aroundEachAttempt(storage.s3, 's3', 'injectFaults', middleware);
  aroundEachAttempt(storage.ddb, 'dynamodb', 'injectFaults', middleware);
}
