/**
 * Yamux window updates sent once a stream has used a stretch of its receive
 * window (UPDATE_AFTER_BYTES), not after every data frame, or at once when
 * the update carries a flag (opening or closing the stream).
 * @chainsafe/libp2p-yamux 7 answers every data frame it reads with an
 * update, so each small RPC message (a request, a reply) cost a second
 * frame back on the wire: a socket write and an encryption on one side, a
 * wake-up, a read and a decryption on the other (bench/README.md).
 * hashicorp/yamux and rust-yamux wait until half the window is used; that
 * rule was tried here and stalled big frames (a batch of 1,000 tasks is
 * hundreds of kilobytes): the sender's window stays at the first 256 KiB,
 * since the library grows it only for updates that follow each other within
 * four round trips, so every 128 KiB of a big frame waited for a round
 * trip, and the user-handler throughput run's largest node peaked 55 MB
 * higher. With a 64 KiB stretch, a run of small messages sends one update
 * per 64 KiB, and a big frame's updates follow each other as quickly as
 * before, so its window grows as before.
 *
 * Flow control is unchanged: a sender still never has more in flight than
 * the receiver granted, and has at least 192 KiB of the first window left
 * when the first update goes back. Installed once, on the library's stream
 * class, by importing this module (src/net/libp2p-transport.ts does).
 */
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'

/** Bytes of a stream's receive window used before an update (without a flag) goes back. */
export const UPDATE_AFTER_BYTES = 64 * 1024

/** The stream fields this rule reads (private in the library's types). */
interface WindowState {
  /** The library's StreamState: 0 Init and 2 SYNReceived are the states whose next frame carries a flag (SYN, ACK). */
  state: number
  recvWindow: number
  recvWindowCapacity: number
  sendWindowUpdate: () => void
}

/** StreamState.Init and StreamState.SYNReceived (getSendFlags, which changes the state, is not called here). */
const FLAGGED_STATES = new Set([0, 2])

const proto = YamuxStream.prototype as unknown as WindowState & { [installed]?: true }
const installed = Symbol.for('taskmesh.yamux-window-updates')

if (proto[installed] !== true) {
  const sendEveryTime = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowState): void {
    // Nothing to say yet: no flag to carry, and less than UPDATE_AFTER_BYTES used since the last update.
    if (!FLAGGED_STATES.has(this.state) && this.recvWindow - this.recvWindowCapacity < UPDATE_AFTER_BYTES) return
    sendEveryTime.call(this)
  }
  proto[installed] = true
}

/** True once the rule is installed (for tests). */
export function windowUpdateRuleInstalled (): boolean {
  return proto[installed] === true
}
