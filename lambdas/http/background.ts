// Work that continues after the response (acks=0). The Node server lets it run; the Lambda handler
// ends its response stream first and then awaits this before the invocation returns, because a
// frozen Lambda environment would otherwise never finish it.
const pending = new Set<Promise<unknown>>();

export function runInBackground(task: () => Promise<unknown>, describe: string): void {
  const promise = task().catch((err) => {
    console.error(JSON.stringify({ level: 'error', message: `background ${describe} failed`, error: err instanceof Error ? err.message : String(err) }));
  });
  pending.add(promise);
  void promise.finally(() => pending.delete(promise));
}

export async function drainBackground(): Promise<void> {
  while (pending.size > 0) await Promise.allSettled([...pending]);
}
