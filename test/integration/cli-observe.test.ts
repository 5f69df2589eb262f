import { spawn, spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeSet, agreedLeader, waitFor } from '../support/nodes.ts'

const CLI = resolve(import.meta.dirname, '../../src/cli.ts')

function taskmesh (...args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 60_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

async function submit (url: string, body: unknown): Promise<string> {
  const res = await fetch(`${url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  expect(res.status).toBe(202)
  return (await res.json() as { id: string }).id
}

describe('taskmesh status, watch and --help against real nodes', () => {
  const set = new NodeSet()
  afterEach(async () => { await set.stopAll() })

  it('every command has --help with examples', () => {
    for (const cmd of ['start', 'status', 'watch', 'submit', 'task', 'demo']) {
      const r = taskmesh(cmd, '--help')
      expect(r.status, cmd).toBe(0)
      expect(r.stdout, cmd).toMatch(/Examples:\n +\$ taskmesh /)
    }
  })

  it('demo --nodes 3 prints the table once all three members are alive and agree, with each node\'s pid; Ctrl-C stops them all', async () => {
    const demo = spawn(process.execPath, [CLI, 'demo', '--nodes', '3', '--base-port', '7461', '--cluster', 'demo-test'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    demo.stdout.on('data', (d: Buffer) => { out += d.toString() })
    demo.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise<number | null>(res => demo.on('exit', code => { res(code) }))
    try {
      await waitFor(() => out.includes('Press Ctrl-C to stop.'), 40_000, 'the demo table')
      for (let i = 1; i <= 3; i++) expect(out).toMatch(new RegExp(`demo-${i}  http://127\\.0\\.0\\.1:${7460 + i}  pid \\d+`))
      expect(out).toMatch(/^\* +demo-\d/m)
      expect(out.match(/^[* ] +demo-\d.* alive /gm)).toHaveLength(3)
      expect(out).toContain('members: 3 alive, 0 suspect, 0 dead')
    } finally {
      demo.kill('SIGINT')
    }
    expect(await exited).toBe(0)
  })

  it('status prints the member table with the leader and totals, without colours when piped, and --json the raw view', async () => {
    const nodes = [await set.start({ name: 'st1', args: ['--capacity', '2'] }), await set.start({ name: 'st2', args: ['--capacity', '2'] })]
    const leader = await waitFor(async () => await agreedLeader(nodes, 2), 10_000, 'two nodes to agree')
    const table = taskmesh('status', '--node', nodes[0]!.url)
    expect(table.status, table.stderr).toBe(0)
    const leaderName = nodes.find(n => n.id === leader.id)!.name
    expect(table.stdout).toContain(`leader: ${leaderName} (term ${leader.term})`)
    expect(table.stdout).toMatch(/NAME +ID +STATUS +SLOTS +RUNNING +QUEUED +CPU +MEM/)
    expect(table.stdout).toMatch(new RegExp(`^\\* +${leaderName}`, 'm'))
    expect(table.stdout).toContain('members: 2 alive, 0 suspect, 0 dead; tasks: 0 running, 0 queued; slots: 4 of 4 free')
    expect(table.stdout).not.toContain('\x1b[')
    const json = JSON.parse(taskmesh('status', '--json', '--node', nodes[1]!.url).stdout) as { leader: { id: string }, members: unknown[] }
    expect(json.leader.id).toBe(leader.id)
    expect(json.members).toHaveLength(2)
  })

  it('watch --json prints one JSON event per line, live; watch --task prints the task\'s flow and exits when it ends', async () => {
    const node = await set.start({ name: 'wa1' })
    await waitFor(async () => (await node.cluster()).leader !== null, 10_000, 'a leader')
    const child = spawn(process.execPath, [CLI, 'watch', '--json', '--node', node.url], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    try {
      await waitFor(() => out.includes('"event":"hello"'), 10_000, 'the hello event')
      const id = await submit(node.url, { type: 'echo', payload: 1 })
      await waitFor(() => out.split('\n').some(l => l.includes(id) && l.includes('"succeeded"')), 10_000, 'the task to succeed in the watch')
      const lines = out.trim().split('\n').map(l => JSON.parse(l) as { event: string, data: { id?: string, status?: string } })
      expect(lines[0]!.event).toBe('hello')
      expect(lines.filter(l => l.event === 'task' && l.data.id === id).map(l => l.data.status)).toContain('queued')
    } finally {
      child.kill('SIGINT')
    }

    const id = await submit(node.url, { type: 'sleep', payload: { ms: 5_000 } })
    const follow = taskmesh('watch', '--task', id, '--node', node.url)
    expect(follow.status, follow.stderr).toBe(0)
    expect(follow.stdout).toMatch(/connected to wa1; leader wa1/)
    expect(follow.stdout).toMatch(new RegExp(`task ${id} sleep running attempt 1`))
    expect(follow.stdout).toMatch(new RegExp(`task ${id} sleep succeeded attempt 1 100%`))
    const unknown = taskmesh('watch', '--task', 'no-such-task', '--node', node.url)
    expect(unknown.status).toBe(2)
    expect(unknown.stderr).toMatch(/404 TASK_NOT_FOUND/)
  })
})
