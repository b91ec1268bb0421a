// The benchmark's cost model: pure functions from measured per-request usage and a dated price
// table (bench/prices.json) to dollars per GiB moved. Nothing here measures or reads files.

export const GIB = 2 ** 30;
export const HOURS_PER_MONTH = 730;

export interface PriceTable {
  asOf: string;
  region: string;
  currency: string;
  notes: string[];
  s3: { putPer1000: number; getPer1000: number; deletePer1000: number; storagePerGBMonth: number; source: string };
  dynamodb: { writeRequestUnitPerMillion: number; readRequestUnitPerMillion: number; source: string };
  lambda: { requestPerMillion: number; arm64PerGBSecond: number; source: string };
  kinesisOnDemand: { ingestPerGB: number; retrievalPerGB: number; streamHour: number; source: string };
  mskServerless: { ingestPerGiB: number; retrievalPerGiB: number; source: string };
}

/** Validates the shape of a parsed prices.json: every price a non-negative number, asOf a date. */
export function parsePrices(raw: unknown): PriceTable {
  const table = raw as PriceTable;
  if (!table || typeof table !== 'object' || !/^\d{4}-\d{2}-\d{2}$/.test(String(table.asOf))) throw new Error('prices: asOf must be a YYYY-MM-DD date');
  const required: Array<[keyof PriceTable, string[]]> = [
    ['s3', ['putPer1000', 'getPer1000', 'deletePer1000', 'storagePerGBMonth']],
    ['dynamodb', ['writeRequestUnitPerMillion', 'readRequestUnitPerMillion']],
    ['lambda', ['requestPerMillion', 'arm64PerGBSecond']],
    ['kinesisOnDemand', ['ingestPerGB', 'retrievalPerGB', 'streamHour']],
    ['mskServerless', ['ingestPerGiB', 'retrievalPerGiB']],
  ];
  for (const [section, fields] of required) {
    const values = table[section] as unknown as Record<string, unknown> | undefined;
    for (const field of fields) {
      const v = values?.[field];
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`prices: ${section}.${field} must be a non-negative number`);
    }
  }
  return table;
}

/** What one API request (one produce or one fetch) consumes, averaged over measured requests. */
export interface RequestUsage {
  s3Puts: number;
  s3Gets: number;
  /** DeleteObject and DeleteObjects requests (compaction and retention remove what they replaced). */
  s3Deletes?: number;
  /** DynamoDB write request units (on-demand), including failed conditional writes. */
  writeUnits: number;
  /** DynamoDB read request units (on-demand). */
  readUnits: number;
  lambdaInvocations: number;
  /** Duration of one invocation in ms (before rounding up to the 1 ms billing granularity). */
  lambdaMs: number;
  lambdaMemoryMb: number;
}

export interface CostBreakdown {
  s3Requests: number;
  dynamodbWrites: number;
  dynamodbReads: number;
  lambdaRequests: number;
  lambdaDuration: number;
  total: number;
}

/** Lambda bills duration rounded up to the next millisecond. */
export function lambdaBilledMs(ms: number): number {
  return ms <= 0 ? 0 : Math.ceil(ms);
}

export function costPerRequest(usage: RequestUsage, prices: PriceTable): CostBreakdown {
  const s3Requests = (usage.s3Puts * prices.s3.putPer1000 + usage.s3Gets * prices.s3.getPer1000 + (usage.s3Deletes ?? 0) * prices.s3.deletePer1000) / 1000;
  const dynamodbWrites = (usage.writeUnits * prices.dynamodb.writeRequestUnitPerMillion) / 1e6;
  const dynamodbReads = (usage.readUnits * prices.dynamodb.readRequestUnitPerMillion) / 1e6;
  const lambdaRequests = (usage.lambdaInvocations * prices.lambda.requestPerMillion) / 1e6;
  const gbSeconds = usage.lambdaInvocations * (lambdaBilledMs(usage.lambdaMs) / 1000) * (usage.lambdaMemoryMb / 1024);
  const lambdaDuration = gbSeconds * prices.lambda.arm64PerGBSecond;
  return { s3Requests, dynamodbWrites, dynamodbReads, lambdaRequests, lambdaDuration, total: s3Requests + dynamodbWrites + dynamodbReads + lambdaRequests + lambdaDuration };
}

export function scaleCost(cost: CostBreakdown, factor: number): CostBreakdown {
  return {
    s3Requests: cost.s3Requests * factor,
    dynamodbWrites: cost.dynamodbWrites * factor,
    dynamodbReads: cost.dynamodbReads * factor,
    lambdaRequests: cost.lambdaRequests * factor,
    lambdaDuration: cost.lambdaDuration * factor,
    total: cost.total * factor,
  };
}

/** The cost of doing both: e.g. the two requests of one transaction. */
export function addCosts(a: CostBreakdown, b: CostBreakdown): CostBreakdown {
  return {
    s3Requests: a.s3Requests + b.s3Requests,
    dynamodbWrites: a.dynamodbWrites + b.dynamodbWrites,
    dynamodbReads: a.dynamodbReads + b.dynamodbReads,
    lambdaRequests: a.lambdaRequests + b.lambdaRequests,
    lambdaDuration: a.lambdaDuration + b.lambdaDuration,
    total: a.total + b.total,
  };
}

/** Requests of `requestBytes` payload each needed to move one GiB. */
export function requestsPerGiB(requestBytes: number): number {
  if (!(requestBytes > 0)) throw new Error('requestBytes must be positive');
  return GIB / requestBytes;
}

/** Dollars per GiB of payload when every request carries `requestBytes`. */
export function costPerGiB(usage: RequestUsage, requestBytes: number, prices: PriceTable): CostBreakdown {
  return scaleCost(costPerRequest(usage, prices), requestsPerGiB(requestBytes));
}

export interface InOutCost {
  inPerGiB: number;
  outPerGiB: number;
  inPlusOutPerGiB: number;
}

export function inOut(inPerGiB: number, outPerGiB: number): InOutCost {
  return { inPerGiB, outPerGiB, inPlusOutPerGiB: inPerGiB + outPerGiB };
}

/** Kinesis Data Streams on-demand, throughput charges only (the stream-hour fee is fixed: see below). */
export function kinesisOnDemandPerGiB(prices: PriceTable): InOutCost {
  return inOut(prices.kinesisOnDemand.ingestPerGB, prices.kinesisOnDemand.retrievalPerGB);
}

export function kinesisStreamMonthly(prices: PriceTable, hours = HOURS_PER_MONTH): number {
  return prices.kinesisOnDemand.streamHour * hours;
}

export function mskServerlessPerGiB(prices: PriceTable): InOutCost {
  return inOut(prices.mskServerless.ingestPerGiB, prices.mskServerless.retrievalPerGiB);
}

/** Retention cost, reported separately from the transfer cost: S3 Standard per GiB-month. */
export function storagePerGiBMonth(prices: PriceTable): number {
  return prices.s3.storagePerGBMonth;
}

// -- DynamoDB capacity units from item sizes -------------------------------------------------

/** On-demand writes: one unit per started KB of the item (the larger of before and after). */
export function writeUnitsForItem(itemBytes: number): number {
  return Math.max(1, Math.ceil(itemBytes / 1024));
}

/** On-demand reads: one unit per started 4 KB for strongly consistent reads, half for eventual. */
export function readUnitsForBytes(bytes: number, consistent: boolean): number {
  const units = Math.max(1, Math.ceil(bytes / 4096));
  return consistent ? units : units / 2;
}

/** Every item of a TransactWriteItems (ConditionCheck included) is written twice: prepare and commit. */
export const TRANSACTIONAL_WRITE_UNITS_PER_ITEM = 2;

const WRITE_OPERATIONS = ['dynamodb.PutItem', 'dynamodb.UpdateItem', 'dynamodb.DeleteItem'];
const READ_OPERATIONS = ['dynamodb.GetItem', 'dynamodb.Query', 'dynamodb.BatchGetItem'];

export function sumOperations(calls: Record<string, number>, operations: readonly string[]): number {
  return operations.reduce((sum, op) => sum + (calls[op] ?? 0), 0);
}

export function dynamoWriteAttempts(calls: Record<string, number>): number {
  return sumOperations(calls, WRITE_OPERATIONS);
}

/**
 * Capacity units derived from call counts alone, under the stated assumption that every written
 * item is under 1 KB (a partition head with a short reservation list, an index entry) and every
 * read returns under 4 KB: one unit for a strongly consistent read, half for an eventually
 * consistent GetItem or Query (`eventualReads`; a BatchGetItem counts as one strongly consistent
 * read: the change markers' read of one topic, eventually consistent, is half of that). A failed
 * conditional write is counted: it is an attempt and it still consumes a write unit. Transactions
 * are priced per item, so their items are counted apart (`transactWriteItems`, summed over
 * attempts). Batch operations are not on the measured paths.
 */
export function unitsFromCalls({ calls, transactWriteItems = 0, eventualReads = 0 }: { calls: Record<string, number>; transactWriteItems?: number; eventualReads?: number }): { writeUnits: number; readUnits: number } {
  return {
    writeUnits: writeUnitsForItem(0) * (dynamoWriteAttempts(calls) + TRANSACTIONAL_WRITE_UNITS_PER_ITEM * transactWriteItems),
    readUnits: readUnitsForBytes(0, true) * sumOperations(calls, READ_OPERATIONS) - (readUnitsForBytes(0, true) - readUnitsForBytes(0, false)) * eventualReads,
  };
}

/** What a recurring run (a scheduled sweep) costs per month, in total and per partition it covers. */
export function monthlyCost(perRun: RequestUsage, runsPerMonth: number, partitions: number, prices: PriceTable): { perMonth: CostBreakdown; perPartitionMonth: number } {
  const perMonth = scaleCost(costPerRequest(perRun, prices), runsPerMonth);
  return { perMonth, perPartitionMonth: partitions > 0 ? perMonth.total / partitions : NaN };
}
