// HTTP to the queue's single base URL: JSON in and out, authentication, typed errors, and retries
// with full-jitter exponential backoff on retryable failures only.
import { signerFor, type Auth, type Signer } from './auth.ts';
import { errorFromResponse, NetworkError, QueueError } from './errors.ts';

export interface RetryOptions {
  /** Retries after the first attempt. @default 5 */
  retries?: number;
  /** @default 100 */
  initialRetryTimeMs?: number;
  /** @default 5000 */
  maxRetryTimeMs?: number;
}

export interface TransportOptions {
  /** The queue's base URL: the local server (`http://127.0.0.1:8787`) or a deployed stack's `Url` output. */
  url: string;
  auth?: Auth;
  retry?: RetryOptions;
  /** Per attempt, on top of any long-poll wait the request asks for. @default 30000 */
  requestTimeoutMs?: number;
  /**
   * Group calls go to the groups function's own URL when the base URL's router names it:
   * 'lambda-urls' between a stack's Function URLs only, 'any' also behind other hosts (a custom
   * domain, a local stack), 'off' never. @default 'lambda-urls'
   */
  directUrls?: DirectUrls;
}

export interface RequestOptions {
  query?: Record<string, string | number | undefined>;
  body?: unknown;
  /** How long the server may hold the request (long polls): added to the timeout. */
  waitMs?: number;
  /** Gives up on the request (and its retries) when aborted. */
  signal?: AbortSignal;
  /** Told the DIRECT_URL_HEADER of a successful response that carries one. */
  onDirectUrl?: (url: string) => void;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Response header of a deployed stack's single base URL on successful group calls: the base URL of
 * the groups function. Group calls may go there directly, one Lambda invocation instead of two (the
 * router's and the function's), if the caller may invoke it.
 */
export const DIRECT_URL_HEADER = 'x-queue-direct-url';

const LAMBDA_URL_HOST = /^[a-z0-9]+\.lambda-url\.([a-z0-9-]+)\.on\.aws$/;

/**
 * Whether a client of `base` may send its calls to `direct`, a URL a response named: a bare base
 * URL (no credentials, path, query or fragment) of the same scheme, and, unless `directUrls` is
 * 'any', only from one Lambda Function URL to another in the same region over HTTPS, so that a
 * proxy in front of the stack can never point the caller's key or signature elsewhere.
 */
export function mayFollowDirectUrl(base: URL, direct: string, directUrls: DirectUrls = 'lambda-urls'): boolean {
  if (directUrls === 'off' || !URL.canParse(direct)) return false;
  const url = new URL(direct);
  if (url.protocol !== base.protocol || url.username || url.password || url.pathname !== '/' || url.search || url.hash || url.href === base.href) return false;
  if (directUrls === 'any') return true;
  const [fromRegion, toRegion] = [LAMBDA_URL_HOST.exec(base.hostname)?.[1], LAMBDA_URL_HOST.exec(url.hostname)?.[1]];
  return url.protocol === 'https:' && url.port === '' && fromRegion !== undefined && fromRegion === toRegion;
}

/** Which direct URLs named by the base URL's answers the client follows (see mayFollowDirectUrl). */
export type DirectUrls = 'lambda-urls' | 'any' | 'off';

export function backoffDelay(attempt: number, retry: RetryOptions, random = Math.random): number {
  return Math.floor(random() * Math.min(retry.maxRetryTimeMs ?? 5000, (retry.initialRetryTimeMs ?? 100) * 2 ** attempt));
}

export class Transport {
  readonly baseUrl: URL;
  private readonly sign: Signer;
  private readonly sent: { requests: number };

  constructor(readonly options: TransportOptions, shared?: { sign: Signer; sent: { requests: number } }) {
    this.baseUrl = new URL(options.url.endsWith('/') ? options.url : `${options.url}/`);
    this.sign = shared?.sign ?? signerFor(options.auth);
    this.sent = shared?.sent ?? { requests: 0 };
  }

  /** Requests sent, retries included (by this transport and those made by `at`): what the server bills. */
  get requests(): number {
    return this.sent.requests;
  }

  /** The same signer, retries and request count, to another base URL (a function's own, named by DIRECT_URL_HEADER). */
  at(url: string): Transport {
    return new Transport({ ...this.options, url }, { sign: this.sign, sent: this.sent });
  }

  /** One request, retried while its failure is retryable; resolves to the parsed JSON body (undefined for 204). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const retry = this.options.retry ?? {};
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(method, path, options);
      } catch (err) {
        if (!(err instanceof QueueError) || !err.retryable || attempt >= (retry.retries ?? 5) || options.signal?.aborted) throw err;
        await sleep(backoffDelay(attempt, retry));
      }
    }
  }

  private async once<T>(method: string, path: string, options: RequestOptions): Promise<T> {
    const url = new URL(path.replace(/^\//, ''), this.baseUrl);
    for (const [name, value] of Object.entries(options.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const headers = await this.sign({ method, url, headers: body === undefined ? {} : { 'content-type': 'application/json' }, body });
    this.sent.requests++;
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body, signal: withTimeout(options.signal, (this.options.requestTimeoutMs ?? 30_000) + (options.waitMs ?? 0)) });
    } catch (err) {
      const timedOut = err instanceof Error && err.name === 'TimeoutError';
      if (options.signal?.aborted) throw err;
      throw new NetworkError(`${method} ${url.pathname} ${timedOut ? 'timed out' : `failed: ${err instanceof Error ? (err.cause as Error | undefined)?.message ?? err.message : String(err)}`}`, timedOut ? 'TIMEOUT' : 'NETWORK_ERROR', 0, true, { cause: err });
    }
    const text = await response.text();
    if (response.ok) {
      const direct = response.headers.get(DIRECT_URL_HEADER);
      if (direct !== null) options.onDirectUrl?.(direct);
      return (text === '' ? undefined : JSON.parse(text)) as T;
    }
    let error: { code?: string; message?: string } | undefined;
    try {
      error = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
    } catch {
      // Not the API's error format (a proxy's page, a Function URL's own 403): keep the text.
    }
    throw errorFromResponse(response.status, error?.code ?? httpCode(response.status), error?.message ?? (`${method} ${url.pathname}: HTTP ${response.status} ${text.slice(0, 200)}`.trim()));
  }
}

function withTimeout(signal: AbortSignal | undefined, ms: number): AbortSignal {
  const timeout = AbortSignal.timeout(ms);
  return signal ? AbortSignal.any([signal, timeout]) : timeout;
}

/** A code for answers without the API's error body (a Function URL refusing a signature, a gateway). */
function httpCode(status: number): string {
  if (status === 403) return 'FORBIDDEN';
  if (status === 429) return 'THROTTLED';
  return `HTTP_${status}`;
}
