import { spawnSync } from 'node:child_process'
import { createServer } from 'node:http'
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

  it('refuses a second node on the data directory of a running one, in one line and with exit 2, before joining the network', async () => {
    const node = await set.start({ name: 'cli-dir1' })
    const second = taskmesh('start', '--name', 'cli-dir2', '--data-dir', node.dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', '--http-port', '0')
    expect(second.status).toBe(2)
    expect(second.stderr.trim()).toBe(`taskmesh: ${join(node.dataDir, 'tasks.db')} is in use by another process or store (does a node already run on the data directory ${node.dataDir}?)`)
    // It stopped before its network layer started: a node logs its security warnings (here: no cluster key)
    // right after that layer is up, and this one never got there.
    expect(second.stdout + second.stderr).not.toMatch(/no cluster key/)
    expect((await node.cluster()).self.name).toBe('cli-dir1')
  })

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

  it('submits a delayed task, retries a failed one (same id, attempts continue), refuses a retry of a succeeded one with exit 2, sets and lists a type limit, and lists the commands in --help', async () => {
    const node = await set.start({ name: 'cli2' })
    await waitFor(async () => (await node.cluster()).leader !== null, 5_000, 'a leader')
    const delayed = taskmesh('submit', 'echo', '"later"', '--delay-ms', '1500', '--json', '--node', node.url)
    expect(delayed.status, delayed.stderr).toBe(0)
    const d = JSON.parse(delayed.stdout) as { id: string, status: string }
    expect(d.status).toBe('scheduled')
    const shown = taskmesh('task', d.id, '--wait', '--node', node.url)
    expect(shown.stdout).toMatch(/status: +succeeded/)
    expect(shown.stdout).toMatch(/run at: +\d{4}-/)
    const badTime = taskmesh('submit', 'echo', '--run-at', 'next tuesday', '--node', node.url)
    expect(badTime.status).toBe(2)
    expect(badTime.stderr).toMatch(/--run-at must be/)

    const failing = taskmesh('submit', 'fail', '{"message":"no"}', '--max-attempts', '1', '--wait', '--json', '--node', node.url)
    const failed = JSON.parse(failing.stdout) as { id: string }
    const retried = taskmesh('retry', failed.id, '--wait', '--json', '--node', node.url)
    expect(retried.status).toBe(1)
    expect(JSON.parse(retried.stdout)).toMatchObject({ id: failed.id, status: 'failed', attempts: 2, maxAttempts: 2, retries: 1 })
    const done = taskmesh('retry', d.id, '--node', node.url)
    expect(done.status).toBe(2)
    expect(done.stderr).toMatch(/409 TASK_NOT_RETRYABLE/)
    const limited = taskmesh('types', 'echo', '--max-concurrent', '3', '--json', '--node', node.url)
    expect(limited.status, limited.stderr).toBe(0)
    expect(JSON.parse(limited.stdout)).toMatchObject({ type: 'echo', maxConcurrent: 3, stored: 1, members: 1 })
    const listed = taskmesh('types', '--node', node.url)
    expect(listed.stdout).toMatch(/^echo +3 +- +0 +0 +0$/m)
    const help = taskmesh('--help')
    expect(help.stdout).toMatch(/retry \[options\] <id>/)
    expect(help.stdout).toMatch(/types \[options\] \[type\]/)
  })

  it('starts a node with labels and submits tasks that require them (--label, --require); an unmet requirement exits 2 with 422; --callback delivers the final record', async () => {
    const node = await set.start({ name: 'cli3', args: ['--label', 'gpu=a100', '--label', 'zone=rack2'] })
    await waitFor(async () => (await node.cluster()).leader !== null, 5_000, 'a leader')
    const ok = taskmesh('submit', 'echo', '"on the gpu"', '--require', 'gpu', '--require', 'zone=rack2', '--wait', '--json', '--node', node.url)
    expect(ok.status, ok.stderr).toBe(0)
    expect(JSON.parse(ok.stdout)).toMatchObject({ status: 'succeeded', require: { gpu: '*', zone: 'rack2' }, worker: node.id })
    const unmet = taskmesh('submit', 'echo', '--require', 'gpu=h100', '--node', node.url)
    expect(unmet.status).toBe(2)
    expect(unmet.stderr).toMatch(/422 REQUIREMENT_UNMET.*gpu=h100/)
    const bad = taskmesh('submit', 'echo', '--require', '=x', '--node', node.url)
    expect(bad.status).not.toBe(0)
    expect(bad.stderr).toMatch(/--require must be KEY=VALUE or KEY/)

    // --callback: the final record reaches a receiver on loopback (in the test's namespace), with the header given.
    const got: Array<{ headers: Record<string, unknown>, body: string }> = []
    const server = createServer((req, res) => {
      let body = ''
      req.on('data', (d: Buffer) => { body += d.toString() })
      req.on('end', () => { got.push({ headers: req.headers, body }); res.writeHead(204).end() })
    })
    await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
    try {
      const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/done`
      const cb = taskmesh('submit', 'echo', '"called back"', '--callback', url, '--callback-header', 'x-receiver=cli', '--json', '--node', node.url)
      expect(cb.status, cb.stderr).toBe(0)
      const { id } = JSON.parse(cb.stdout) as { id: string }
      await waitFor(() => got.length > 0 || undefined, 10_000, 'the callback')
      expect(got[0]!.headers['x-receiver']).toBe('cli')
      expect(JSON.parse(got[0]!.body)).toMatchObject({ event: 'task.succeeded', task: { id, result: 'called back' } })
      const shown = await waitFor(() => { const r = taskmesh('task', id, '--node', node.url); return /callback: .* delivered after 1 try/.test(r.stdout) ? r : undefined }, 5_000, 'the delivery on the task')
      expect(shown.stdout).toContain(url)
    } finally {
      await new Promise(resolve => { server.close(resolve) })
    }
  })
})
