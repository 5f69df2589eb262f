/** Reads server-sent events (GET /v1/events) with fetch: one parsed event at a time. */

export interface ServerEvent { event: string, id: string | null, data: unknown }

/** Splits an event stream's bytes into events; `data` is parsed as JSON. */
export async function * parseEvents (body: AsyncIterable<Uint8Array>): AsyncGenerator<ServerEvent> {
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true })
    let end: number
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end)
      buf = buf.slice(end + 2)
      let event = 'message'
      let id: string | null = null
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('id: ')) id = line.slice(4)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
      }
      if (data.length > 0) yield { event, id, data: JSON.parse(data.join('\n')) }
    }
  }
}

/** Opens the stream; rejects with the API's error message on a non-200 answer. */
export async function openEventStream (url: string, signal: AbortSignal): Promise<AsyncGenerator<ServerEvent>> {
  const res = await fetch(url, { signal, headers: { accept: 'text/event-stream' } })
  if (res.status !== 200 || res.body === null) {
    const body = await res.json().catch(() => undefined) as { error?: { code?: string, message?: string } } | undefined
    throw Object.assign(new Error(`GET ${url} answered ${res.status}${body?.error === undefined ? '' : ` ${body.error.code}: ${body.error.message}`}`), { status: res.status })
  }
  return parseEvents(res.body)
}
