/** A small HTTP client for the CLI: JSON in and out, the API's error shape turned into a readable message. */

export class CliError extends Error {
  override name = 'CliError'
}

/** Adds `Authorization: Bearer $TASKMESH_TOKEN` when that variable is set (nodes whose API is not on loopback need it). */
export function authHeaders (headers: Record<string, string>): Record<string, string> {
  const token = process.env.TASKMESH_TOKEN
  return token === undefined || token === '' ? headers : { ...headers, authorization: `Bearer ${token}` }
}

export async function api<T> (method: string, url: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  let res: Response
  try {
    res = await fetch(url, {
      method,
      headers: authHeaders(body === undefined ? {} : { 'content-type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs)
    })
  } catch (err) {
    const cause = (err as Error).cause
    throw new CliError(`cannot reach ${url}: ${cause instanceof Error ? cause.message : (err as Error).message}`)
  }
  const parsed = await res.json().catch(() => undefined) as { error?: { code?: string, message?: string } } | undefined
  if (!res.ok) throw new CliError(`${method} ${url} answered ${res.status}${parsed?.error?.code === undefined ? '' : ` ${parsed.error.code}`}: ${parsed?.error?.message ?? res.statusText}`)
  return parsed as T
}

export interface TaskView {
  id: string
  type: string
  status: string
  attempts: number
  worker: string | null
  progress: unknown
  result: unknown
  error: string | null
  createdAt: number
  startedAt: number | null
  finishedAt: number | null
}

export const TERMINAL = new Set(['succeeded', 'failed', 'cancelled'])

/** Long-polls a task until it ends (or `deadlineMs` passes). */
export async function waitForTask (base: string, id: string, deadlineMs: number): Promise<TaskView> {
  for (;;) {
    const left = deadlineMs - Date.now()
    const t = await api<TaskView>('GET', `${base}/v1/tasks/${encodeURIComponent(id)}?wait=${Math.max(0, Math.min(left, 30_000))}`, undefined, 40_000)
    if (TERMINAL.has(t.status) || Date.now() >= deadlineMs) return t
  }
}
