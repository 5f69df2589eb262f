// The chaos workload's recording handler: waits payload.ms, appends one JSON
// line per finished execution to the file named by TASKMESH_RECORD_FILE (one
// file per host), and returns the payload.
import { appendFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'

export default async function record (payload, ctx) {
  const startedAt = Date.now()
  if (payload !== null && typeof payload === 'object' && typeof payload.ms === 'number') await sleep(payload.ms, undefined, { signal: ctx.signal })
  appendFileSync(process.env.TASKMESH_RECORD_FILE, JSON.stringify({ id: ctx.taskId, attempt: ctx.attempt, startedAt, finishedAt: Date.now() }) + '\n')
  return payload
}
