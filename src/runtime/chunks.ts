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
  if (items.length <= 1) return items.length === 0 ? [] : [[items[0]!]]
  const out: T[][] = []
  let current: T[] = []
  let size = 0
  for (const item of items) {
    const bytes = bytesOf(item)
    if (current.length > 0 && (size + bytes > maxBytes || current.length >= maxItems)) {
      out.push(current)
      current = []
      size = 0
    }
    current.push(item)
    size += bytes
  }
  if (current.length > 0) out.push(current)
  return out
}

/** The first batch of chunkBySize (empty for no items), without measuring the items after it. */
export function firstChunkBySize<T> (items: readonly T[], maxBytes: number, maxItems = Infinity): T[] {
  if (items.length <= 1) return items.slice()
  let size = 0
  let n = 0
  for (const item of items) {
    if (n >= maxItems) break
    const bytes = bytesOf(item)
    if (n > 0 && size + bytes > maxBytes) break
    size += bytes
    n++
  }
  return items.slice(0, n)
}

function bytesOf (item: unknown): number {
  return Buffer.byteLength(JSON.stringify(item) ?? 'null') + 1
}
