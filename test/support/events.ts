/** Follows GET /v1/events in a test: collects the events and waits for one that matches. */
import { openEventStream } from '../../src/client/sse.ts'

export interface ReceivedEvent { event: string, data: unknown, at: number }

export interface EventStream {
  /** Every event received so far. */
  readonly events: ReceivedEvent[]
  /** Resolves with the first event (already received or to come) that `match` accepts; rejects after `timeoutMs`. */
  next (match: (e: ReceivedEvent) => boolean, timeoutMs: number, what: string): Promise<ReceivedEvent>
  close (): void
}

export async function openEvents (url: string): Promise<EventStream> {
  const abort = new AbortController()
  const stream = await openEventStream(url, abort.signal)
  const events: ReceivedEvent[] = []
  const waiters = new Set<() => void>()
  void (async () => {
    try {
      for await (const e of stream) {
        events.push({ event: e.event, data: e.data, at: Date.now() })
        for (const w of waiters) w()
      }
    } catch { /* closed */ }
  })()
  return {
    events,
    async next (match, timeoutMs, what) {
      return await new Promise((resolve, reject) => {
        const check = (): void => {
          const hit = events.find(match)
          if (hit === undefined) return
          clearTimeout(timer)
          waiters.delete(check)
          resolve(hit)
        }
        const timer = setTimeout(() => {
          waiters.delete(check)
          reject(new Error(`no event within ${timeoutMs} ms: ${what}; got ${events.map(e => e.event).join(', ')}`))
        }, timeoutMs)
        waiters.add(check)
        check()
      })
    },
    close () { abort.abort() }
  }
}
