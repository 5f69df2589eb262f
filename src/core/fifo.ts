/** A FIFO with O(1) push and shift (the Scheduler's queue of one priority). */
export class Fifo<T> {
  #items: Array<T | undefined> = []
  #head = 0
  get size (): number { return this.#items.length - this.#head }
  push (x: T): void { this.#items.push(x) }
  shift (): T | undefined {
    if (this.#head >= this.#items.length) return undefined
    const x = this.#items[this.#head]
    this.#items[this.#head++] = undefined
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head)
      this.#head = 0
    }
    return x
  }
}
