/** Follows GET /v1/events over fetch and parses the server-sent events. */

export interface ServerEvent { event: string, data: unknown, at: number }

export interface EventStream {
  /** Every event received so far. */
  readonly events: ServerEvent[]
  /** Resolves with the first event (already received or to come) that `match` accepts; rejects after `timeoutMs`. */
  next (match: (e: ServerEvent) => boolean, timeoutMs: number, what: string): Promise<ServerEvent>
  close (): void
}

export async function openEvents (url: string): Promise<EventStream> {
  const abort = new AbortController()
  const res = await fetch(url, { signal: abort.signal, headers: { accept: 'text/event-stream' } })
  if (res.status !== 200 || res.body === null) {
    abort.abort()
    throw Object.assign(new Error(`${url}: ${res.status} ${await res.text().catch(() => '')}`), { status: res.status })
  }
  const events: ServerEvent[] = []
  const waiters = new Set<() => void>()
  void (async () => {
    const decoder = new TextDecoder()
    let buf = ''
    try {
      for await (const chunk of res.body!) {
        buf += decoder.decode(chunk, { stream: true })
        let end: number
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end)
          buf = buf.slice(end + 2)
          let event = 'message'
          const data: string[] = []
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) event = line.slice(7)
            else if (line.startsWith('data: ')) data.push(line.slice(6))
          }
          if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')), at: Date.now() })
          for (const w of waiters) w()
        }
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
