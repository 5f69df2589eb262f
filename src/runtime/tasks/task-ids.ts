/**
 * Task ids: UUID version 7 (RFC 9562): 48 bits of Unix milliseconds, then
 * random bits, in the usual 8-4-4-4-12 form. Ids made later sort later, on
 * one node strictly (the 12 bits after the time count up within a
 * millisecond, the RFC's "fixed-length dedicated counter", method 1), across
 * nodes as far as their clocks agree. Nothing relies on that order for
 * correctness; it is for the store: every holder keeps its records in a
 * b-tree keyed by id, and random (version 4) ids put each new record on a
 * random page, so a batch of n tasks dirtied about n index pages and wrote
 * them all to the log at commit, where ids in time order share the last few
 * pages (bench/README.md: store cost per task).
 */
import { randomFillSync } from 'node:crypto'

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))
const bytes = new Uint8Array(16)

let lastMs = -1
let counter = 0

/** A new UUIDv7, later than every one this process made before (within a millisecond, up to 4,096 of them; the 4,097th waits for the next millisecond's value). */
export function newTaskId (nowMs: number = Date.now()): string {
  if (nowMs > lastMs) {
    lastMs = nowMs
    counter = 0
  } else if (++counter > 0xfff) {
    // 4,096 ids in one millisecond (or a clock that went back): borrow the next millisecond.
    lastMs++
    counter = 0
  }
  randomFillSync(bytes, 8, 8)
  const ms = lastMs
  bytes[0] = Math.floor(ms / 2 ** 40) & 0xff
  bytes[1] = Math.floor(ms / 2 ** 32) & 0xff
  bytes[2] = (ms >>> 24) & 0xff
  bytes[3] = (ms >>> 16) & 0xff
  bytes[4] = (ms >>> 8) & 0xff
  bytes[5] = ms & 0xff
  bytes[6] = 0x70 | (counter >>> 8) // version 7, counter high bits
  bytes[7] = counter & 0xff
  bytes[8] = 0x80 | (bytes[8]! & 0x3f) // variant 10
  const h = (i: number): string => HEX[bytes[i]!]!
  return `${h(0)}${h(1)}${h(2)}${h(3)}-${h(4)}${h(5)}-${h(6)}${h(7)}-${h(8)}${h(9)}-${h(10)}${h(11)}${h(12)}${h(13)}${h(14)}${h(15)}`
}
