// Request authentication: none (the local server), an API key, or SigV4 (Function URLs with IAM
// auth sign as service "lambda"). The AWS credential chain is loaded only when SigV4 is used
// without explicit credentials, so API-key and browser users never pull it in.
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiration?: Date;
}

export type Auth =
  | { type: 'api-key'; key: string }
  | {
      type: 'sigv4';
      /** Default: from a Function URL's host name (`<id>.lambda-url.<region>.on.aws`), else AWS_REGION, else us-east-1. */
      region?: string;
      /** Default: the AWS SDK's default credential chain (environment, profile, SSO, instance role, ...). */
      credentials?: AwsCredentials | (() => Promise<AwsCredentials>);
    };

export interface OutgoingRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
}

/** Adds what `auth` requires to the request's headers. */
export type Signer = (request: OutgoingRequest) => Promise<Record<string, string>>;

export function signerFor(auth: Auth | undefined): Signer {
  if (!auth) return async (request) => request.headers;
  if (auth.type === 'api-key') return async (request) => ({ ...request.headers, 'x-api-key': auth.key });
  let signer: SignatureV4 | undefined;
  return async (request) => {
    signer ??= new SignatureV4({ service: 'lambda', region: auth.region ?? regionOf(request.url), credentials: auth.credentials ?? (await defaultCredentials()), sha256: Sha256 });
    return sigV4Headers(signer, request);
  };
}

/** The headers of `request` signed by `signer` (host included in the signature, left out of the result: fetch sets it). */
export async function sigV4Headers(signer: SignatureV4, request: OutgoingRequest, signingDate?: Date): Promise<Record<string, string>> {
  const { url } = request;
  const signed = await signer.sign({
    method: request.method,
    protocol: url.protocol,
    hostname: url.hostname,
    port: url.port ? Number(url.port) : undefined,
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers: { ...request.headers, host: url.host },
    body: request.body,
  }, { signingDate });
  const { host: _host, ...headers } = signed.headers;
  return headers;
}

export function regionOf(url: URL): string {
  return /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(url.hostname)?.[1] ?? globalThis.process?.env?.AWS_REGION ?? 'us-east-1';
}

async function defaultCredentials(): Promise<() => Promise<AwsCredentials>> {
  const { defaultProvider } = await import('@aws-sdk/credential-provider-node');
  return defaultProvider();
}
