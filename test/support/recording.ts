/**
 * What the failover and drain tests share: a three-node cluster running the
 * recording handler (each finished execution logged to a file), reading a
 * task from one node, and finding the attempts that run on a worker or when
 * a new leader began to dispatch.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { agreedLeader, waitFor } from './nodes.ts'
import type { NodeSet, TestNode } from './nodes.ts'

export interface Task { id: string, status: string, attempts: number, worker: string | null, result: unknown, error: string | null, startedAt: number | null }

/** A task's record as `node` answers it (long-polling up to `waitMs` for its end). */
export async function task (node: TestNode, id: string, waitMs = 0): Promise<Task> {
  const res = await fetch(`${node.url}/v1/tasks/${id}${waitMs > 0 ? `?wait=${waitMs}` : ''}`, { signal: AbortSignal.timeout(waitMs + 5_000) })
  return await res.json() as Task
}

/** Three nodes (2 slots each) running the `record` handler, which logs each finished execution to `record`; `extra` args go to the third node only. */
export async function recordingCluster (set: NodeSet, prefix: string, extra: string[] = []): Promise<{ record: string, opts: { args: string[], env: Record<string, string> }, nodes: TestNode[], leader: TestNode }> {
  const dir = await set.tempDir()
  const record = join(dir, 'executions.log')
  writeFileSync(record, '')
  const config = join(dir, 'cluster.config.json')
  writeFileSync(config, JSON.stringify({ handlers: { record: resolve(import.meta.dirname, '../fixtures/record-handler.js') }, retryBaseMs: 50 }))
  const opts = { args: ['--config', config, '--capacity', '2'], env: { TASKMESH_RECORD_FILE: record } }
  const nodes = [
    await set.start({ name: `${prefix}1`, ...opts }),
    await set.start({ name: `${prefix}2`, ...opts }),
    await set.start({ name: `${prefix}3`, ...opts, args: [...opts.args, ...extra] })
  ]
  const first = await waitFor(async () => await agreedLeader(nodes, 3), 5_000, 'three nodes to agree')
  return { record, opts, nodes, leader: nodes.find(n => n.id === first.id)! }
}

/** Executions the recording handler logged: task id, attempt, and the pid of the node that ran it. */
export function executions (record: string): Array<{ id: string, attempt: number, pid: number }> {
  return readFileSync(record, 'utf8').trim().split('\n').filter(l => l !== '').map(l => {
    const [id, attempt, pid] = l.split(' ')
    return { id: id!, attempt: Number(attempt), pid: Number(pid) }
  })
}

/** Epoch ms at which one of `nodes` logged that it dispatches as leader, at or after `sinceMs`. */
export function dispatchingAt (nodes: TestNode[], sinceMs: number): number | undefined {
  const times = nodes.flatMap(n => n.output().split('\n').filter(l => l.includes('"dispatching as leader"')).map(l => (JSON.parse(l) as { time: number }).time))
  return times.filter(t => t >= sinceMs).sort((a, b) => a - b)[0]
}

/**
 * Two or more of `ids` running on `worker` that began less than `freshMs` ago (as `observer` sees them):
 * one with most of its time still to run, so that it cannot end before a signal sent now lands.
 */
export async function freshlyRunningOn (observer: TestNode, worker: TestNode, ids: string[], freshMs: number): Promise<string[]> {
  return await waitFor(async () => {
    const all = await Promise.all(ids.map(async id => await task(observer, id)))
    const mine = all.filter(t => t.worker === worker.id && t.status === 'running' && t.startedAt !== null && Date.now() - t.startedAt < freshMs)
    return mine.length >= 2 ? mine.map(t => t.id) : undefined
  }, 20_000, 'tasks running on the worker')
}
