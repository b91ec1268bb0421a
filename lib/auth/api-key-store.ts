// The API keys table: issue, rotate, revoke and list keys, and verify a presented key. Handlers
// verify on every request, so lookups are cached briefly per process: a revoked or rotated-out key
// stops working within `cacheTtlMs` everywhere.
import { ConditionalCheckFailedException, TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import { DeleteCommand, GetCommand, PutCommand, TransactWriteCommand, paginateScan, type DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { allItems } from '../aws/pages.ts';
import { NotFoundError } from '../errors.ts';
import { apiKeyId, apiKeyMatches, issueApiKey } from './api-keys.ts';

export interface ApiKeyInfo {
  id: string;
  /** Who or what the key is for, e.g. "billing-service". */
  name: string;
  createdAt: number;
  /** Epoch seconds after which the key is refused (the table's TTL attribute); absent: never. */
  expiresAt?: number;
}

interface StoredApiKey extends ApiKeyInfo {
  hash: string;
}

export interface ApiKeyStoreOptions {
  cacheTtlMs: number;
  /** Bounds the memory a flood of made-up key ids can take. */
  maxCachedKeys: number;
  now: () => number;
}

/** How long a handler may go on accepting a revoked key (and refusing a new one it looked up before). */
export const API_KEY_CACHE_TTL_MS = 30_000;

const DEFAULT_OPTIONS: ApiKeyStoreOptions = { cacheTtlMs: API_KEY_CACHE_TTL_MS, maxCachedKeys: 1000, now: Date.now };

export class ApiKeyStore {
  private readonly options: ApiKeyStoreOptions;
  private readonly cache = new Map<string, { item: StoredApiKey | undefined; until: number }>();

  constructor(private readonly ddb: DynamoDBDocumentClient, private readonly table: string, options: Partial<ApiKeyStoreOptions> = {}) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
  }

  /** Issues a key; the returned `key` is the only copy of the secret. */
  async create(name: string, expiresAt?: number): Promise<{ key: string; info: ApiKeyInfo }> {
    const { key, info, item } = this.newKey(name, expiresAt);
    await this.ddb.send(new PutCommand({ TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(id)' }));
    return { key, info };
  }

  /**
   * Issues a successor under the same name and lets the old key expire after `graceSeconds`, so
   * clients can switch over without an outage. Both writes happen in one transaction.
   */
  async rotate(id: string, graceSeconds: number, expiresAt?: number): Promise<{ key: string; info: ApiKeyInfo }> {
    const old = await this.get(id);
    if (!old) throw new NotFoundError('NOT_FOUND', `API key ${id} does not exist`);
    const { key, info, item } = this.newKey(old.name, expiresAt);
    const retireAt = Math.min(old.expiresAt ?? Infinity, Math.floor(this.options.now() / 1000) + graceSeconds);
    try {
      await this.ddb.send(new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: this.table, Item: item, ConditionExpression: 'attribute_not_exists(id)' } },
          { Update: { TableName: this.table, Key: { id }, UpdateExpression: 'SET expiresAt = :at', ConditionExpression: 'attribute_exists(id)', ExpressionAttributeValues: { ':at': retireAt } } },
        ],
      }));
    } catch (err) {
      const revoked = err instanceof TransactionCanceledException && (err.CancellationReasons ?? []).some((r) => r.Code === 'ConditionalCheckFailed');
      if (revoked) throw new NotFoundError('NOT_FOUND', `API key ${id} was revoked while rotating it`);
      throw err;
    }
    this.cache.delete(id);
    return { key, info };
  }

  async revoke(id: string): Promise<void> {
    try {
      await this.ddb.send(new DeleteCommand({ TableName: this.table, Key: { id }, ConditionExpression: 'attribute_exists(id)' }));
    } catch (err) {
      if (err instanceof ConditionalCheckFailedException) throw new NotFoundError('NOT_FOUND', `API key ${id} does not exist`);
      throw err;
    }
    this.cache.delete(id);
  }

  async list(): Promise<ApiKeyInfo[]> {
    const keys = await allItems<ApiKeyInfo>(paginateScan({ client: this.ddb }, { TableName: this.table, ProjectionExpression: 'id, #name, createdAt, expiresAt', ExpressionAttributeNames: { '#name': 'name' } }));
    return keys.sort((a, b) => a.createdAt - b.createdAt);
  }

  /** The key's owner if `key` is a stored, unexpired key; undefined otherwise. */
  async verify(key: string): Promise<ApiKeyInfo | undefined> {
    const id = apiKeyId(key);
    if (!id) return undefined;
    const item = await this.cachedGet(id);
    if (!item || (item.expiresAt !== undefined && item.expiresAt * 1000 <= this.options.now())) return undefined;
    if (!apiKeyMatches(key, item.hash)) return undefined;
    const { hash: _hash, ...info } = item;
    return info;
  }

  private newKey(name: string, expiresAt: number | undefined) {
    const { id, key, hash } = issueApiKey();
    const info: ApiKeyInfo = { id, name, createdAt: this.options.now(), ...(expiresAt === undefined ? {} : { expiresAt }) };
    return { key, info, item: { ...info, hash } satisfies StoredApiKey };
  }

  private async get(id: string): Promise<StoredApiKey | undefined> {
    const res = await this.ddb.send(new GetCommand({ TableName: this.table, Key: { id }, ConsistentRead: true }));
    return res.Item as StoredApiKey | undefined;
  }

  private async cachedGet(id: string): Promise<StoredApiKey | undefined> {
    const now = this.options.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) return hit.item;
    const item = await this.get(id);
    this.cache.delete(id);
    if (this.cache.size >= this.options.maxCachedKeys) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(id, { item, until: now + this.options.cacheTtlMs });
    return item;
  }
}
