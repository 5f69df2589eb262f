/** A binary min-heap of due times (ties: the earlier push first), for the tasks a leader holds until their runAt. */
import { MinHeap } from './min-heap.ts'

export interface Due { atMs: number, id: string }

export class DueHeap {
  readonly #heap = new MinHeap<Due & { seq: number }>((a, b) => a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq))
  #seq = 0

  get size (): number { return this.#heap.size }

  peek (): Due | undefined { return this.#heap.peek() }

  push (d: Due): void { this.#heap.push({ ...d, seq: this.#seq++ }) }

  pop (): Due | undefined {
    const top = this.#heap.pop()
    return top === undefined ? undefined : { atMs: top.atMs, id: top.id }
  }
}
