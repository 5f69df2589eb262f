import { execFileSync, spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { lanDown, lanNamespaces, lanUp } from '../../scripts/lan/lan.ts'
import type { Lan } from '../../scripts/lan/lan.ts'
import { faultSchedule } from '../../scripts/chaos/schedule.ts'
import { waitFor } from '../support/nodes.ts'

const CLI = resolve(import.meta.dirname, '../../src/cli.ts')

/** True once a node's log (as `out` reads it) says member `other` joined. */
function joined (out: () => string, other: string): boolean {
  return out().split('\n').some(l => l.includes('"member joined"') && l.includes(`"member":"${other}"`))
}

describe('the simulated LAN (network namespaces on a bridge)', () => {
  let lan: Lan | null = null
  const procs: ChildProcess[] = []
  const dirs: string[] = []
  /** Keeps the node process to be killed after the test, and reads everything it printed. */
  const captured = (proc: ChildProcess): (() => string) => {
    procs.push(proc)
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => { out += d.toString() })
    proc.stderr!.on('data', (d: Buffer) => { out += d.toString() })
    return () => out
  }
  afterEach(() => {
    for (const p of procs.splice(0)) p.kill('SIGKILL')
    if (lan !== null) lanDown(lan.prefix)
    lan = null
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
  })

  it('two hosts on the bridge find each other by mDNS alone (no bootstrap list), over their LAN addresses; down leaves no namespace behind', async () => {
    lan = lanUp(2)
    expect(lanNamespaces(lan.prefix).sort()).toEqual([lan.bridgeNs, ...lan.hosts.map(h => h.ns)].sort())
    const outputs = lan.hosts.map(h => {
      const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-lan-'))
      dirs.push(dir)
      const proc = spawn('ip', ['netns', 'exec', h.ns, process.execPath, CLI, 'start', '--name', `h${h.index}`, '--cluster', 'lan-test',
        '--listen', `/ip4/${h.addr}/tcp/0`, '--http-port', '0', '--data-dir', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TASKMESH_BOOTSTRAP: '', TASKMESH_MDNS: 'true', TASKMESH_LOG_LEVEL: 'debug' } })
      return captured(proc)
    })
    await waitFor(() => joined(outputs[0]!, 'h2') && joined(outputs[1]!, 'h1'), 20_000, 'each host to see the other join')
    // Found by mDNS (the only discovery configured), at its address on the bridge.
    const discovered = outputs[0]!().split('\n').find(l => l.includes('"peer discovered"') && l.includes('/ip4/198.18.0.12/'))
    expect(discovered, outputs[0]!()).toBeDefined()
    const prefix = lan.prefix
    for (const p of procs.splice(0)) p.kill('SIGKILL')
    lanDown(prefix)
    lan = null
    expect(lanNamespaces(prefix)).toEqual([])
  })

  it('with no multicast route and mDNS off, two hosts find each other through one bootstrap name (a hosts file gives it both addresses)', async () => {
    lan = lanUp(2)
    const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-lan-'))
    dirs.push(dir)
    const name = 'seeds.taskmesh.test'
    const hostsFile = join(dir, 'hosts')
    writeFileSync(hostsFile, `127.0.0.1 localhost\n${lan.hosts.map(h => `${h.addr} ${name}`).join('\n')}\n`)
    const port = 7001
    // The flags say it all: no bootstrap or mDNS setting from the caller's environment overrides them.
    const { TASKMESH_BOOTSTRAP: _b, TASKMESH_MDNS: _m, ...inherited } = process.env
    const outputs = lan.hosts.map(h => {
      // No multicast: mDNS could not cross the bridge even if it were on.
      execFileSync('ip', ['-n', h.ns, 'route', 'del', '224.0.0.0/4'])
      expect(execFileSync('ip', ['-n', h.ns, 'route', 'show'], { encoding: 'utf8' })).not.toMatch(/224\./)
      const dataDir = join(dir, `h${h.index}`)
      // A mount namespace of its own in which the hosts file covers /etc/hosts: the system resolver (getaddrinfo) reads it.
      const proc = spawn('ip', ['netns', 'exec', h.ns, 'unshare', '--mount', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hostsFile,
        process.execPath, CLI, 'start', '--name', `h${h.index}`, '--cluster', 'lan-dns', '--no-mdns', '--bootstrap', `${name}:${port}`,
        '--listen', `/ip4/${h.addr}/tcp/${port}`, '--http-port', '0', '--data-dir', dataDir],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...inherited, TASKMESH_BOOTSTRAP_RETRY_MS: '500', TASKMESH_LOG_LEVEL: 'debug' } })
      return captured(proc)
    })
    await waitFor(() => joined(outputs[0]!, 'h2') && joined(outputs[1]!, 'h1'), 20_000, 'each host to see the other join')
    // Found through the name, at the other host's address on the bridge, with no peer id given.
    const lines = outputs.flatMap(o => o().split('\n'))
    const answered = lines.filter(l => l.includes('"bootstrap address answered"')).map(l => JSON.parse(l) as { host: string, addr: string })
    expect(answered.length, outputs.map(o => o()).join('\n')).toBeGreaterThan(0)
    for (const a of answered) {
      expect(a.host).toBe(name)
      expect(lan.hosts.map(h => `/ip4/${h.addr}/tcp/${port}`)).toContain(a.addr)
    }
  })

  it('a chaos seed always gives the same fault schedule', () => {
    const opts = { seed: 7, durationMs: 60_000, faults: ['kill', 'pause', 'partition', 'restart'] as const, rate: 6 }
    const a = faultSchedule({ ...opts, faults: [...opts.faults] })
    expect(faultSchedule({ ...opts, faults: [...opts.faults] })).toEqual(a)
    expect(a.length).toBeGreaterThan(0)
    expect(new Set(a.map(f => f.kind)).size).toBeGreaterThan(1)
    expect(faultSchedule({ ...opts, seed: 8, faults: [...opts.faults] })).not.toEqual(a)
  })
})
