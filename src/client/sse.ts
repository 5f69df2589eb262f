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

/** An answer other than 2xx, with the API's error code when it sent one. */
export class TaskmeshApiError extends Error {
  override name = 'TaskmeshApiError'
  /** HTTP status; undefined when the node could not be reached. */
  readonly status: number | undefined
  /** The API's error code (e.g. NOT_FOUND, QUEUE_FULL), when it sent one. */
  readonly code: string | undefined
  constructor (message: string, status?: number, code?: string) {
    super(message)
    this.status = status
    this.code = code
  }
}

/** Turns a non-2xx answer (its status and body text) into a TaskmeshApiError naming the request, status, code and message. */
export function answerError (method: string, url: string, res: { status: number, statusText: string, body: string }): TaskmeshApiError {
  let parsed: { error?: { code?: string, message?: string } } | undefined
  try {
    parsed = JSON.parse(res.body) as typeof parsed
  } catch {
    parsed = undefined
  }
  const code = parsed?.error?.code
  return new TaskmeshApiError(`${method} ${url} answered ${res.status}${code === undefined ? '' : ` ${code}`}: ${parsed?.error?.message ?? res.statusText}`, res.status, code)
}

/** Opens the stream; rejects with a TaskmeshApiError on an answer other than 200. */
export async function openEventStream (url: string, signal: AbortSignal, headers: Record<string, string> = {}): Promise<AsyncGenerator<ServerEvent>> {
  let res: Response
  try {
    res = await fetch(url, { signal, headers: { ...headers, accept: 'text/event-stream' } })
  } catch (err) {
    if (signal.aborted) throw err
    const cause = (err as Error).cause
    throw new TaskmeshApiError(`cannot reach ${url}: ${cause instanceof Error ? cause.message : (err as Error).message}`)
  }
  if (res.status !== 200 || res.body === null) throw answerError('GET', url, { status: res.status, statusText: res.statusText, body: await res.text().catch(() => '') })
  return parseEvents(res.body)
}
