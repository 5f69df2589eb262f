/**
 * Yamux window updates as the protocol's reference implementation sends
 * them (hashicorp/yamux, and rust-yamux since its PR #109): only once half
 * of a stream's receive window has been used, or when the update carries a
 * flag (opening or closing the stream). @chainsafe/libp2p-yamux 7 sends one
 * after every data frame it reads, so each small RPC message (a request, a
 * reply) cost a second frame back on the wire: a socket write and an
 * encryption on one side, a wake-up, a read and a decryption on the other,
 * about half of all frames between two busy nodes (see bench/README.md).
 *
 * Flow control is unchanged: a sender still never has more in flight than
 * the receiver granted, and always has at least half a window (128 KiB at
 * first) to send in before it waits for an update; a bigger message is sent
 * in pieces as before, the receiver granting more each time it has used
 * half. Installed once, on the library's stream class, by importing this
 * module (src/net/libp2p-transport.ts does).
 */
import { YamuxStream } from '@chainsafe/libp2p-yamux/stream'

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
const installed = Symbol.for('taskmesh.yamux-half-window-updates')

if (proto[installed] !== true) {
  const sendEveryTime = proto.sendWindowUpdate
  proto.sendWindowUpdate = function (this: WindowState): void {
    // Nothing to say yet: no flag to carry, and more than half the window still free.
    if (!FLAGGED_STATES.has(this.state) && this.recvWindowCapacity > this.recvWindow / 2) return
    sendEveryTime.call(this)
  }
  proto[installed] = true
}

/** True once the rule is installed (for tests). */
export function halfWindowUpdatesInstalled (): boolean {
  return proto[installed] === true
}
