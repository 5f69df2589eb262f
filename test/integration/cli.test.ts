import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeSet, waitFor } from '../support/nodes.ts'

const CLI = resolve(import.meta.dirname, '../../src/cli.ts')

function taskmesh (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('the taskmesh CLI against a real node', () => {
  const set = new NodeSet()
  afterEach(async () => { await set.stopAll() })

  it('submits one task and waits for it, submits a JSON-lines file, shows a task, and reports errors with exit 2', async () => {
    const node = await set.start({ name: 'cli1' })
    await waitFor(async () => (await node.cluster()).leader !== null, 5_000, 'a leader')
    const one = taskmesh('submit', 'echo', '{"hello":"world"}', '--wait', '--json', '--node', node.url)
    expect(one.status, one.stderr).toBe(0)
    const task = JSON.parse(one.stdout) as { id: string, status: string, result: unknown }
    expect(task).toMatchObject({ status: 'succeeded', result: { hello: 'world' }, copies: 1 })
    // A lone node stores one copy, and says so; --retain-ms is passed on (a value out of range is refused).
    const kept = taskmesh('submit', 'echo', '{}', '--retain-ms', '60000', '--json', '--node', node.url)
    expect(kept.status, kept.stderr).toBe(0)
    expect(JSON.parse(kept.stdout)).toMatchObject({ status: 'queued', copies: 1 })
    const tooShort = taskmesh('submit', 'echo', '{}', '--retain-ms', '0', '--node', node.url)
    expect(tooShort.status).toBe(2)
    expect(tooShort.stderr).toMatch(/retainMs/)

    const file = join(await set.tempDir(), 'tasks.jsonl')
    writeFileSync(file, Array.from({ length: 1500 }, (_, i) => JSON.stringify({ type: 'echo', payload: i })).join('\n') + '\n')
    const many = taskmesh('submit', '--file', file, '--wait', '--json', '--node', node.url)
    expect(many.status, many.stderr).toBe(0)
    const summary = JSON.parse(many.stdout) as { ids: string[], counts: Record<string, number> }
    expect(summary.ids).toHaveLength(1500)
    expect(summary.counts).toEqual({ succeeded: 1500 })

    const shown = taskmesh('task', task.id, '--node', node.url)
    expect(shown.stdout).toMatch(/status: +succeeded/)
    const unknown = taskmesh('submit', 'resize', '--node', node.url)
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/422 UNKNOWN_TASK_TYPE/)
    const failing = taskmesh('submit', 'fail', '{"message":"no"}', '--max-attempts', '1', '--wait', '--node', node.url)
    expect(failing.status).toBe(1)
    expect(failing.stdout).toMatch(/status: +failed/)
  })
})
