/** `taskmesh submit`: one task from arguments, or many from a JSON-lines file with a progress bar. */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { SingleBar } from 'cli-progress'
import { CliError, api, waitForTask } from './client.ts'
import type { TaskView } from './client.ts'

export interface SubmitOptions {
  node: string
  file?: string
  wait?: boolean
  waitMs: number
  priority?: number
  timeoutMs?: number
  maxAttempts?: number
  idempotencyKey?: string
  json?: boolean
}

const CHUNK = 1000

function parsePayload (raw: string | undefined): unknown {
  if (raw === undefined) return null
  try {
    return JSON.parse(raw) as unknown
  } catch (err) {
    throw new CliError(`the payload must be JSON (quote it for the shell): ${(err as Error).message}`)
  }
}

export async function submitOne (type: string, rawPayload: string | undefined, opts: SubmitOptions, out: NodeJS.WritableStream): Promise<void> {
  const base = opts.node.replace(/\/$/, '')
  const body = { type, payload: parsePayload(rawPayload), priority: opts.priority, timeoutMs: opts.timeoutMs, maxAttempts: opts.maxAttempts, idempotencyKey: opts.idempotencyKey }
  const { id } = await api<{ id: string }>('POST', `${base}/v1/tasks`, body)
  if (opts.wait !== true) {
    out.write(opts.json === true ? JSON.stringify({ id, status: 'queued' }) + '\n' : `${id}\n`)
    return
  }
  const t = await waitForTask(base, id, Date.now() + opts.waitMs)
  out.write(opts.json === true ? JSON.stringify(t) + '\n' : formatTask(t) + '\n')
  if (t.status !== 'succeeded') process.exitCode = 1
}

export async function submitFile (opts: SubmitOptions & { file: string }, out: NodeJS.WritableStream): Promise<void> {
  const base = opts.node.replace(/\/$/, '')
  const tasks: unknown[] = []
  const lines = createInterface({ input: createReadStream(opts.file), crlfDelay: Infinity })
  let n = 0
  try {
    for await (const line of lines) {
      n++
      if (line.trim() === '') continue
      try {
        tasks.push(JSON.parse(line))
      } catch (err) {
        throw new CliError(`${opts.file}:${n}: not JSON: ${(err as Error).message}`)
      }
    }
  } catch (err) {
    if (err instanceof CliError) throw err
    throw new CliError(`cannot read ${opts.file}: ${(err as Error).message}`)
  }
  const tty = process.stderr.isTTY === true && opts.json !== true
  const bar = tty ? new SingleBar({ format: '{phase} [{bar}] {value}/{total} tasks | {eta_formatted} left', stream: process.stderr, hideCursor: true }) : null
  bar?.start(tasks.length, 0, { phase: 'submitting' })
  const ids: string[] = []
  for (let i = 0; i < tasks.length; i += CHUNK) {
    const chunk = tasks.slice(i, i + CHUNK)
    try {
      const r = await api<{ ids: string[] }>('POST', `${base}/v1/tasks/batch`, { tasks: chunk })
      ids.push(...r.ids)
    } catch (err) {
      bar?.stop()
      throw new CliError(`tasks ${i + 1}-${i + chunk.length} of ${opts.file} were not accepted (${ids.length} before them were): ${(err as Error).message}`)
    }
    bar?.update(ids.length)
    if (!tty && opts.json !== true) process.stderr.write(`submitted ${ids.length}/${tasks.length}\n`)
  }
  bar?.stop()
  if (opts.wait !== true) {
    out.write(opts.json === true ? JSON.stringify({ ids }) + '\n' : `submitted ${ids.length} tasks\n${ids.join('\n')}\n`)
    return
  }
  bar?.start(ids.length, 0, { phase: 'running   ' })
  const deadline = Date.now() + opts.waitMs
  const results: TaskView[] = []
  let next = 0
  await Promise.all(Array.from({ length: Math.min(16, ids.length) }, async () => {
    while (next < ids.length) {
      const id = ids[next++]!
      results.push(await waitForTask(base, id, deadline))
      bar?.update(results.length)
    }
  }))
  bar?.stop()
  const counts: Record<string, number> = {}
  for (const t of results) counts[t.status] = (counts[t.status] ?? 0) + 1
  if (opts.json === true) out.write(JSON.stringify({ ids, counts }) + '\n')
  else out.write(`${ids.length} tasks: ${Object.entries(counts).map(([s, c]) => `${c} ${s}`).join(', ')}\n`)
  if ((counts.succeeded ?? 0) !== ids.length) process.exitCode = 1
}

export function formatTask (t: TaskView): string {
  const took = t.startedAt !== null && t.finishedAt !== null ? `${t.finishedAt - t.startedAt} ms` : '-'
  return [
    `id:        ${t.id}`,
    `type:      ${t.type}`,
    `status:    ${t.status}`,
    `attempts:  ${t.attempts}`,
    `worker:    ${t.worker ?? '-'}`,
    `progress:  ${JSON.stringify(t.progress)}`,
    `ran for:   ${took}`,
    t.error === null ? null : `error:     ${t.error}`,
    `result:    ${JSON.stringify(t.result)}`
  ].filter(l => l !== null).join('\n')
}
