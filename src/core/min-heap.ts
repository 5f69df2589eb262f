/**
 * A binary min-heap under a strict order `before` (ties are the caller's to
 * break, for example by an insertion number, when the order must be stable).
 */
export class MinHeap<T> {
  readonly #heap: T[] = []
  readonly #before: (a: T, b: T) => boolean

  constructor (before: (a: T, b: T) => boolean) {
    this.#before = before
  }

  get size (): number { return this.#heap.length }

  peek (): T | undefined { return this.#heap[0] }

  push (item: T): void {
    const h = this.#heap
    h.push(item)
    let i = h.length - 1
    while (i > 0) {
      const p = (i - 1) >> 1
      if (!this.#before(h[i]!, h[p]!)) break
      ;[h[i], h[p]] = [h[p]!, h[i]!]
      i = p
    }
  }

  pop (): T | undefined {
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
        if (l < h.length && this.#before(h[l]!, h[m]!)) m = l
        if (r < h.length && this.#before(h[r]!, h[m]!)) m = r
        if (m === i) break
        ;[h[i], h[m]] = [h[m]!, h[i]!]
        i = m
      }
    }
    return top
  }
}
