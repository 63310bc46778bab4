/**
 * `ls` over the admin API's paged listings (SPEC §8.2 r2): one page by default, printed with
 * the cursor of the next; `--all` follows `next_cursor` to the end.
 */
import type { OptionDef } from "../command.ts";
import { listLimit } from "./shared.ts";

export const LIST_OPTIONS = {
  limit: { type: "string", value: "<n>", description: "records per page, 1-1000 (default 100)" },
  cursor: { type: "string", value: "<cursor>", description: "start at this page (the next_cursor of the previous one)" },
  all: { type: "boolean", description: "follow next_cursor and list every record" },
} as const satisfies Record<string, OptionDef>;

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

/** Fetches one page, or every page from `cursor` on with `all`, and answers the items in order. */
export async function list<T>(
  values: { limit?: string; cursor?: string; all?: boolean },
  fetchPage: (query: URLSearchParams) => Promise<Page<T>>,
): Promise<Page<T>> {
  const limit = listLimit(values.limit);
  const items: T[] = [];
  let cursor = values.cursor ?? null;
  for (;;) {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor !== null) query.set("cursor", cursor);
    const page = await fetchPage(query);
    items.push(...page.items);
    cursor = page.next_cursor;
    if (!values.all || cursor === null) return { items, next_cursor: cursor };
  }
}
