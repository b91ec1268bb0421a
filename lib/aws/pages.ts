// Every item of a paginated DynamoDB read (the SDK's paginateQuery / paginateScan).
export async function allItems<T = Record<string, unknown>>(pages: AsyncIterable<{ Items?: Record<string, unknown>[] }>): Promise<T[]> {
  const items: T[] = [];
  for await (const page of pages) items.push(...((page.Items ?? []) as T[]));
  return items;
}

/** UTF-16 code-unit order: the same everywhere, unlike localeCompare (ICU and locale). */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
