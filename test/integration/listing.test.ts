/**
 * The cluster-wide listing on real nodes: tasks submitted to three nodes are
 * held on two each, yet `GET /v1/tasks?scope=cluster` on any node pages
 * through every one exactly once, newest submit first, with filters; the
 * cursor is stable while more tasks are submitted; bad cursors get a clear
 * 400; the client and `taskmesh list --all` follow the pages.
 */
import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { TaskmeshClient } from '../../src/client/index.ts'
import { agreedLeader, nodesPerTest, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'

const CLI = resolve(import.meta.dirname, '../../src/cli.ts')

interface Listed { tasks: Array<{ id: string, status: string, type: string, createdAt: number }>, cursor?: string | null, partial?: boolean }

async function list (node: TestNode, query: string): Promise<{ status: number, body: Listed & { error?: { code: string, message: string } } }> {
  const res = await fetch(`${node.url}/v1/tasks?${query}`, { signal: AbortSignal.timeout(15_000) })
  return { status: res.status, body: await res.json() as never }
}

/** Every page of a cluster listing from `node`, following the cursor. */
async function allPages (node: TestNode, query: string): Promise<{ ids: string[], pages: number }> {
  const ids: string[] = []
  let cursor: string | null | undefined
  let pages = 0
  do {
    const r = await list(node, `scope=cluster&${query}${cursor == null ? '' : `&cursor=${cursor}`}`)
    expect(r.status).toBe(200)
    expect(r.body.partial).toBeUndefined()
    ids.push(...r.body.tasks.map(t => t.id))
    cursor = r.body.cursor
    pages++
  } while (cursor != null && pages < 100)
  return { ids, pages }
}

describe('cluster-wide listing on real nodes', () => {
  const set = nodesPerTest()

  it('pages through every task of the cluster from any node, each once, newest submit first, with filters and a stable cursor', async () => {
    const nodes: TestNode[] = []
    for (let i = 1; i <= 3; i++) nodes.push(await set.start({ name: `ls${i}`, cluster: 'ls', args: ['--capacity', '4'] }))
    await waitFor(async () => await agreedLeader(nodes, 3), 10_000, 'three nodes to agree')
    const client = new TaskmeshClient({ nodes: nodes.map(n => n.url) })
    // 30 tasks through all three nodes, one after another (distinct submit times, mostly): echo succeeds, fail fails.
    const submitted: string[] = []
    for (let i = 0; i < 30; i++) {
      const node = nodes[i % 3]!
      const type = i % 5 === 0 ? 'fail' : 'echo'
      const r = await fetch(`${node.url}/v1/tasks?wait=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type, payload: i % 5 === 0 ? { message: `no ${i}` } : { i }, maxAttempts: 1 }) })
      submitted.push(((await r.json()) as { id: string }).id)
    }
    // The followers hold only their own submits (the leader holds the second copy of each)...
    const held = await Promise.all(nodes.map(async n => (await list(n, 'limit=1000')).body.tasks.length))
    expect(held.filter(h => h < 30).length).toBe(2)
    // ...yet any node lists all 30, each once, in pages of 7.
    for (const n of nodes) {
      const { ids, pages } = await allPages(n, 'limit=7')
      expect(ids.length).toBe(30)
      expect(new Set(ids)).toEqual(new Set(submitted))
      expect(pages).toBeGreaterThanOrEqual(5)
    }
    // Newest submit first.
    const first = await list(nodes[1]!, 'scope=cluster&limit=1000')
    const created = first.body.tasks.map(t => t.createdAt)
    expect(created).toEqual([...created].sort((a, b) => b - a))
    expect(first.body.cursor).toBeNull()
    // Filters: by status and by type.
    expect(new Set((await allPages(nodes[2]!, 'status=failed&limit=4')).ids)).toEqual(new Set(submitted.filter((_, i) => i % 5 === 0)))
    expect((await allPages(nodes[0]!, 'type=echo&limit=10')).ids.length).toBe(24)
    // A cursor stays valid while more is submitted: the next page begins after it, and new tasks come only on a fresh listing.
    const page1 = await list(nodes[0]!, 'scope=cluster&limit=10')
    await client.submit({ type: 'echo', payload: { late: true } })
    const rest: string[] = []
    let cursor = page1.body.cursor
    while (cursor != null) {
      const r = await list(nodes[2]!, `scope=cluster&limit=10&cursor=${cursor}`)
      rest.push(...r.body.tasks.map(t => t.id))
      cursor = r.body.cursor
    }
    expect([...page1.body.tasks.map(t => t.id), ...rest].sort()).toEqual([...submitted].sort())
    // The client and the CLI follow the pages.
    const viaClient: string[] = []
    let c: string | undefined
    for (;;) {
      const p = await client.listCluster({ limit: 8, cursor: c })
      viaClient.push(...p.tasks.map(t => t.id))
      if (p.cursor === null) break
      c = p.cursor
    }
    expect(viaClient.length).toBe(31)
    const cli = spawnSync(process.execPath, [CLI, 'list', '--node', nodes[1]!.url, '--all', '--limit', '6', '--json'], { encoding: 'utf8', timeout: 30_000 })
    expect(cli.status).toBe(0)
    expect(cli.stdout.trim().split('\n').map(l => (JSON.parse(l) as { id: string }).id).length).toBe(31)
  })

  it('refuses a cursor it did not give out, or one without scope=cluster, with 400 INVALID_REQUEST, and answers nothing else', async () => {
    const node = await set.start({ name: 'lsbad', cluster: 'lsbad' })
    const forged = Buffer.from('{"not":"a key"}').toString('base64url')
    for (const q of [`scope=cluster&cursor=${forged}`, 'scope=cluster&cursor=bm90LWpzb24', 'cursor=abc', 'scope=everywhere', 'scope=cluster&limit=0x10']) {
      const r = await list(node, q)
      expect(r.status, q).toBe(400)
      expect(r.body.error?.code, q).toBe('INVALID_REQUEST')
    }
  })
})
