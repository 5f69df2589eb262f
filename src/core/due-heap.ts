/** A binary min-heap of due times (ties: the earlier push first), for the tasks a leader holds until their runAt. */
export interface Due { atMs: number, id: string }

export class DueHeap {
  readonly #heap: Array<Due & { seq: number }> = []
  #seq = 0

  get size (): number { return this.#heap.length }

  peek (): Due | undefined { return this.#heap[0] }

  push (d: Due): void {
    const h = this.#heap
    h.push({ ...d, seq: this.#seq++ })
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!earlier(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  pop (): Due | undefined {
    const h = this.#heap
    const top = h[0]
    const last = h.pop()
    if (h.length > 0 && last !== undefined) {
      h[0] = last
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < h.length && earlier(h[l]!, h[m]!)) m = l
        if (r < h.length && earlier(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top === undefined ? undefined : { atMs: top.atMs, id: top.id }
  }
}

function earlier (a: { atMs: number, seq: number }, b: { atMs: number, seq: number }): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq)
}
