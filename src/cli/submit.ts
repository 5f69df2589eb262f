/** `taskmesh submit`: one task from arguments, or many from a JSON-lines file with a progress bar. */
import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { SingleBar } from 'cli-progress'
import { PartialSubmitError } from '../client/index.ts'
import type { BatchTaskSubmission, Task, TaskSubmission } from '../client/index.ts'
import { CliError, clientFor } from './common.ts'

export interface SubmitOptions {
  node: string
  file?: string
  wait?: boolean
  waitMs: number
  priority?: number
  timeoutMs?: number
  maxAttempts?: number
  idempotencyKey?: string
  retainMs?: number
  /** A delayed task: ms after the submit, or a time (Unix ms or an ISO 8601 date). */
  delayMs?: number
  runAt?: string
  /** Labels the task requires of its worker (`*`: any value). */
  require?: Record<string, string>
  /** Where the final record is POSTed once the task ends, and headers sent with it. */
  callback?: string
  callbackHeader?: Record<string, string>
  /** Parents: task ids (each value may list several, comma-separated). */
  dependsOn?: string[]
  json?: boolean
}

/** `--run-at`: Unix milliseconds, or a date the JavaScript Date parser reads (ISO 8601). */
export function parseRunAt (raw: string): number {
  const ms = /^[0-9]+$/.test(raw) ? Number(raw) : Date.parse(raw)
  if (!Number.isSafeInteger(ms)) throw new CliError(`--run-at must be Unix milliseconds or an ISO 8601 date, got "${raw}"`)
  return ms
}

/** `--depends-on`: task ids, comma-separated or the option repeated. */
export function parseDependsOn (raw: string[] | undefined): string[] | undefined {
  if (raw === undefined) return undefined
  const ids = raw.flatMap(v => v.split(',')).map(v => v.trim()).filter(v => v !== '')
  if (ids.length === 0) throw new CliError('--depends-on needs at least one task id')
  return ids
}

function parsePayload (raw: string | undefined): unknown {
  if (raw === undefined) return null
  try {
    return JSON.parse(raw) as unknown
  } catch (err) {
    throw new CliError(`the payload must be JSON (quote it for the shell): ${(err as Error).message}`)
  }
}

export async function submitOne (type: string, rawPayload: string | undefined, opts: SubmitOptions, out: NodeJS.WritableStream): Promise<void> {
  const client = clientFor(opts.node)
  const body: TaskSubmission = { type, payload: parsePayload(rawPayload), priority: opts.priority, timeoutMs: opts.timeoutMs, maxAttempts: opts.maxAttempts, idempotencyKey: opts.idempotencyKey, retainMs: opts.retainMs, delayMs: opts.delayMs, runAt: opts.runAt === undefined ? undefined : parseRunAt(opts.runAt), require: opts.require, callback: opts.callback === undefined ? undefined : { url: opts.callback, ...(opts.callbackHeader === undefined ? {} : { headers: opts.callbackHeader }) }, dependsOn: parseDependsOn(opts.dependsOn) }
  if (opts.wait !== true) {
    const { id, status, copies } = await client.submit(body)
    out.write(opts.json === true ? JSON.stringify({ id, status, copies }) + '\n' : `${id}\n`)
    return
  }
  const t = await client.submitAndWait(body, { timeoutMs: opts.waitMs })
  out.write(opts.json === true ? JSON.stringify(t) + '\n' : formatTask(t) + '\n')
  if (t.status !== 'succeeded') process.exitCode = 1
}

export async function submitFile (opts: SubmitOptions & { file: string }, out: NodeJS.WritableStream): Promise<void> {
  const client = clientFor(opts.node)
  const tasks: BatchTaskSubmission[] = []
  const lines = createInterface({ input: createReadStream(opts.file), crlfDelay: Infinity })
  let n = 0
  try {
    for await (const line of lines) {
      n++
      if (line.trim() === '') continue
      try {
        tasks.push(JSON.parse(line) as BatchTaskSubmission)
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
  let ids: string[]
  try {
    ids = await client.submitMany(tasks, accepted => {
      bar?.update(accepted.length)
      if (!tty && opts.json !== true) process.stderr.write(`submitted ${accepted.length}/${tasks.length}\n`)
    })
  } catch (err) {
    bar?.stop()
    if (!(err instanceof PartialSubmitError)) throw err
    const accepted = err.accepted.length
    throw new CliError(`tasks ${accepted + 1}-${Math.min(tasks.length, accepted + 1000)} of ${opts.file} were not accepted (${accepted} before them were): ${(err as Error).message}`)
  }
  bar?.stop()
  if (opts.wait !== true) {
    out.write(opts.json === true ? JSON.stringify({ ids }) + '\n' : `submitted ${ids.length} tasks\n${ids.join('\n')}\n`)
    return
  }
  bar?.start(ids.length, 0, { phase: 'running   ' })
  let done = 0
  const results = await client.waitMany(ids, { timeoutMs: opts.waitMs, onTask: () => { bar?.update(++done) } })
  bar?.stop()
  const counts: Record<string, number> = {}
  for (const t of results) counts[t.status] = (counts[t.status] ?? 0) + 1
  if (opts.json === true) out.write(JSON.stringify({ ids, counts }) + '\n')
  else out.write(`${ids.length} tasks: ${Object.entries(counts).map(([s, c]) => `${c} ${s}`).join(', ')}\n`)
  if ((counts.succeeded ?? 0) !== ids.length) process.exitCode = 1
}

export function formatTask (t: Task): string {
  const took = t.startedAt !== null && t.finishedAt !== null ? `${t.finishedAt - t.startedAt} ms` : '-'
  return [
    `id:        ${t.id}`,
    `type:      ${t.type}`,
    `status:    ${t.status}`,
    `attempts:  ${t.attempts}${t.maxAttempts === undefined ? '' : ` of ${t.maxAttempts}`}${t.retries === undefined ? '' : ` (retried ${t.retries}x)`}`,
    t.runAt === undefined ? null : `run at:    ${new Date(t.runAt).toISOString()}`,
    t.require === undefined ? null : `requires:  ${Object.entries(t.require).map(([k, v]) => `${k}=${v}`).join(', ')}${t.unplaceable === undefined ? '' : ` (${t.unplaceable})`}`,
    ...(t.callbacks ?? []).map(d => `callback:  ${d.url} ${d.state} after ${d.attempts} ${d.attempts === 1 ? 'try' : 'tries'}${d.lastError === null || d.state === 'delivered' ? '' : ` (${d.lastError})`}`),
    t.dependsOn === undefined ? null : `parents:   ${t.dependsOn.join(', ')}`,
    `worker:    ${t.worker ?? '-'}`,
    `progress:  ${JSON.stringify(t.progress)}`,
    `ran for:   ${took}`,
    t.error === null ? null : `error:     ${t.error}`,
    `result:    ${JSON.stringify(t.result)}`
  ].filter(l => l !== null).join('\n')
}
