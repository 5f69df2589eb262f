/**
 * Splits items into batches whose JSON stays under `maxBytes` (an item larger
 * than that travels alone, and is refused by the transport with a clear
 * error). Keeps batches of many small items within one RPC frame.
 *
 * Measuring an item is a JSON.stringify of it (the frame is made again from
 * the items when it is sent), so neither function measures what cannot
 * change its answer: a lone item (it goes alone, whatever its size), and,
 * for the first batch alone, the items after it.
 */
export function chunkBySize<T> (items: readonly T[], maxBytes: number, maxItems = Infinity): T[][] {
  const out: T[][] = []
  for (let start = 0; start < items.length;) {
    const end = batchEnd(items, start, maxBytes, maxItems)
    out.push(items.slice(start, end))
    start = end
  }
  return out
}

/** The first batch of chunkBySize (empty for no items), without measuring the items after it. */
export function firstChunkBySize<T> (items: readonly T[], maxBytes: number, maxItems = Infinity): T[] {
  return items.slice(0, batchEnd(items, 0, maxBytes, maxItems))
}

/** Where the batch that begins at `start` ends (exclusive): a lone item left is not measured. */
function batchEnd (items: readonly unknown[], start: number, maxBytes: number, maxItems: number): number {
  if (items.length - start <= 1) return items.length
  let size = 0
  let end = start
  while (end < items.length && end - start < maxItems) {
    const bytes = bytesOf(items[end])
    if (end > start && size + bytes > maxBytes) break
    size += bytes
    end++
  }
  return end
}

function bytesOf (item: unknown): number {
  return Buffer.byteLength(JSON.stringify(item) ?? 'null') + 1
}
