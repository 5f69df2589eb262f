/**
 * Splits items into batches whose JSON stays under `maxBytes` (an item larger
 * than that travels alone, and is refused by the transport with a clear
 * error). Keeps batches of many small items within one RPC frame.
 */
export function chunkBySize<T> (items: readonly T[], maxBytes: number, maxItems = Infinity): T[][] {
  const out: T[][] = []
  let current: T[] = []
  let size = 0
  for (const item of items) {
    const bytes = Buffer.byteLength(JSON.stringify(item) ?? 'null') + 1
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
