import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { nodesPerTest } from '../support/nodes.ts'

/** The arguments the process now runs with (after the executable replaced itself, same pid). */
function commandLine (pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(a => a !== '')
}

/** The environment the process now runs with. */
function environment (pid: number): string[] {
  return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').filter(a => a !== '')
}

describe('V8 heap sizing of a node (bin/taskmesh.js)', () => {
  const set = nodesPerTest()

  it('runs `taskmesh start` with the young generation, old-generation growth and malloc arenas bounded, in the same process', async () => {
    const node = await set.start({ name: 'h1' })
    const args = commandLine(node.proc.pid!)
    expect(args).toContain('--max-semi-space-size=4')
    expect(args).toContain('--heap-growing-percent=50')
    expect(environment(node.proc.pid!)).toContain('MALLOC_ARENA_MAX=2')
    // The flags go to node, before the script; the user's arguments follow unchanged.
    expect(args.indexOf('--max-semi-space-size=4')).toBeLessThan(args.findIndex(a => a.endsWith('taskmesh.js')))
    expect(args.slice(args.indexOf('start'))).toEqual(['start', '--name', 'h1', '--cluster', 'test', '--http-port', '0', '--data-dir', node.dataDir, '--listen', '/ip4/127.0.0.1/tcp/0'])
    // The replaced process is the node that answers, and a signal to the pid the parent knows still drains it.
    expect((await node.cluster()).members.length).toBe(1)
    node.signal('SIGTERM')
    expect(await node.exited).toBe(0)
  })

  it('leaves a heap flag and a MALLOC_ARENA_MAX the user gave alone and adds only the other flag', async () => {
    const node = await set.start({ name: 'h2', env: { NODE_OPTIONS: '--max-semi-space-size=16', MALLOC_ARENA_MAX: '8' } })
    const args = commandLine(node.proc.pid!)
    expect(args.filter(a => a.includes('semi-space'))).toEqual([])
    expect(args).toContain('--heap-growing-percent=50')
    expect(environment(node.proc.pid!).filter(e => e.startsWith('MALLOC_ARENA_MAX='))).toEqual(['MALLOC_ARENA_MAX=8'])
  })

  it('gives no heap flags with TASKMESH_HEAP_FLAGS=0 (V8 sizes the heap itself)', async () => {
    const node = await set.start({ name: 'h3', env: { TASKMESH_HEAP_FLAGS: '0' } })
    expect(commandLine(node.proc.pid!).filter(a => a.includes('semi-space') || a.includes('heap-growing'))).toEqual([])
    expect(environment(node.proc.pid!).filter(e => e.startsWith('MALLOC_ARENA_MAX='))).toEqual([])
  })
})
