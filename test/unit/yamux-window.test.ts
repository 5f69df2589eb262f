/**
 * src/net/yamux-window.ts: the real @chainsafe/libp2p-yamux muxers, joined
 * in memory, with the half-window rule installed. Every frame each side
 * writes is decoded from its header, so the tests count window updates
 * rather than trust them.
 */
import { describe, expect, it } from 'vitest'
import { yamux } from '@chainsafe/libp2p-yamux'
import { defaultLogger } from '@libp2p/logger'
import type { Stream, StreamMuxer } from '@libp2p/interface'
import { lpStream } from 'it-length-prefixed-stream'
import { Uint8ArrayList } from 'uint8arraylist'
import { UPDATE_AFTER_BYTES, windowUpdateRuleInstalled } from '../../src/net/yamux-window.ts'

const WINDOW_UPDATE = 1
const FLAG_SYN = 1
const FLAG_ACK = 2

interface Sent { windowUpdates: number, flagged: number, data: number }

/** Two muxers joined by an in-memory pipe; counts what each side sends by frame type. */
function joined (onIncoming: (s: Stream) => void): { client: StreamMuxer, sent: { client: Sent, server: Sent } } {
  const factory = yamux()({ logger: defaultLogger() })
  const client = factory.createStreamMuxer({ direction: 'outbound' })
  const server = factory.createStreamMuxer({ direction: 'inbound', onIncomingStream: onIncoming })
  const sent = { client: { windowUpdates: 0, flagged: 0, data: 0 }, server: { windowUpdates: 0, flagged: 0, data: 0 } }
  async function * counted (source: AsyncIterable<Uint8Array | Uint8ArrayList>, into: Sent): AsyncGenerator<Uint8Array | Uint8ArrayList> {
    for await (const chunk of source) {
      // A chunk from the muxer is one frame: a 12-byte header, then any data.
      const head = chunk.subarray(0, 12)
      const flags = (head[2]! << 8) | head[3]!
      if (head[1] === WINDOW_UPDATE && (flags & (FLAG_SYN | FLAG_ACK)) === 0) into.windowUpdates++
      else if ((flags & (FLAG_SYN | FLAG_ACK)) !== 0) into.flagged++
      else into.data++
      yield chunk
    }
  }
  void server.sink(counted(client.source, sent.client))
  void client.sink(counted(server.source, sent.server))
  return { client, sent }
}

describe('yamux window updates (src/net/yamux-window.ts)', () => {
  it('is installed on the library stream class', () => {
    expect(windowUpdateRuleInstalled()).toBe(true)
  })

  it('sends no window update for small request/reply messages until UPDATE_AFTER_BYTES are used', async () => {
    const { client, sent } = joined(stream => {
      const frames = lpStream(stream)
      void (async () => {
        for (let i = 0; i < 200; i++) await frames.write((await frames.read()).subarray())
      })()
    })
    const stream = await client.newStream()
    const frames = lpStream(stream)
    const message = new Uint8Array(200).fill(7)
    for (let i = 0; i < 200; i++) {
      await frames.write(message)
      expect((await frames.read()).subarray()).toEqual(message)
    }
    // 200 messages of 202 bytes each way: 40 KB, under UPDATE_AFTER_BYTES (64 KiB).
    // Before this rule each side answered every data frame with an update (200 each).
    expect(200 * 202).toBeLessThan(UPDATE_AFTER_BYTES)
    expect(sent.client.windowUpdates).toBe(0)
    expect(sent.server.windowUpdates).toBe(0)
    // The stream was opened (SYN) and acknowledged (ACK) as before.
    expect(sent.client.flagged).toBeGreaterThanOrEqual(1)
    expect(sent.server.flagged).toBeGreaterThanOrEqual(1)
    await client.close()
  })

  it('still moves a message several windows long, granting more every UPDATE_AFTER_BYTES', async () => {
    const size = 3 * 1024 * 1024
    let received: Uint8Array | undefined
    const { client, sent } = joinedWith(size, b => { received = b })
    const stream = await client.newStream()
    const big = new Uint8Array(size)
    for (let i = 0; i < size; i++) big[i] = i % 251
    await lpStream(stream, { maxDataLength: size }).write(big)
    await expect.poll(() => received?.byteLength, { timeout: 10_000 }).toBe(size)
    expect(received).toEqual(big)
    // Updates went back as the receiver used the window: some, and at most one per UPDATE_AFTER_BYTES.
    expect(sent.server.windowUpdates).toBeGreaterThan(0)
    expect(sent.server.windowUpdates).toBeLessThanOrEqual(Math.ceil(size / UPDATE_AFTER_BYTES))
    await client.close()
  })
})

/** A joined pair whose server reads one length-prefixed message of up to `max` bytes from each incoming stream. */
function joinedWith (max: number, onMessage: (b: Uint8Array) => void): ReturnType<typeof joined> {
  return joined(stream => {
    void (async () => { onMessage((await lpStream(stream, { maxDataLength: max }).read()).subarray()) })()
  })
}
