import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { DEFAULTS, defaults, loadConfig } from '../../src/config.ts'
import { tickIntervalMs } from '../../src/timings.ts'
import type { Config } from '../../src/config.ts'
import { MAX_ATTEMPTS, MAX_NODE_NAME_LENGTH, MAX_TASK_TIMEOUT_MS, MAX_TYPE_LENGTH } from '../../src/protocol/constants.ts'

// An empty folder as the working directory, so no cluster.config.json is picked up.
const cwd = mkdtempSync(join(os.tmpdir(), 'taskmesh-tunables-'))
afterAll(() => { rmSync(cwd, { recursive: true, force: true }) })

const withEnv = (env: Record<string, string>): ReturnType<typeof loadConfig> => loadConfig({ env, cwd })
const withFlags = (flags: Partial<Config>): ReturnType<typeof loadConfig> => loadConfig({ flags, env: {}, cwd })

describe('config: tunables that were literals in the code', () => {
  it('keeps the values the code had built in as their defaults', () => {
    const c = withEnv({})
    expect(c.resultGraceMs).toBe(5_000)
    expect(c.outstandingPerSlot).toBe(2)
    expect(c.mdnsIntervalMs).toBe(5_000)
    expect(c.abortGraceMs).toBe(2_000)
  })

  it('takes each of them from a TASKMESH_* variable', () => {
    const c = withEnv({ TASKMESH_RESULT_GRACE_MS: '9000', TASKMESH_OUTSTANDING_PER_SLOT: '1', TASKMESH_MDNS_INTERVAL_MS: '1000', TASKMESH_ABORT_GRACE_MS: '500' })
    expect([c.resultGraceMs, c.outstandingPerSlot, c.mdnsIntervalMs, c.abortGraceMs]).toEqual([9_000, 1, 1_000, 500])
  })

  it('gives a stopping node 30 s to drain by default, from TASKMESH_DRAIN_TIMEOUT_MS or a flag otherwise', () => {
    expect(withEnv({}).drainTimeoutMs).toBe(30_000)
    expect(withEnv({ TASKMESH_DRAIN_TIMEOUT_MS: '0' }).drainTimeoutMs).toBe(0)
    expect(withFlags({ drainTimeoutMs: 5_000 }).drainTimeoutMs).toBe(5_000)
  })

  it('rejects each of them out of bounds, naming the field', () => {
    const bad: Array<[string, string]> = [
      ['TASKMESH_RESULT_GRACE_MS', '-1'], ['TASKMESH_RESULT_GRACE_MS', '3600001'],
      ['TASKMESH_OUTSTANDING_PER_SLOT', '0'], ['TASKMESH_OUTSTANDING_PER_SLOT', '17'],
      ['TASKMESH_MDNS_INTERVAL_MS', '99'], ['TASKMESH_MDNS_INTERVAL_MS', 'often'],
      ['TASKMESH_ABORT_GRACE_MS', '-1'], ['TASKMESH_ABORT_GRACE_MS', '600001'],
      ['TASKMESH_DRAIN_TIMEOUT_MS', '-1'], ['TASKMESH_DRAIN_TIMEOUT_MS', '86400001'], ['TASKMESH_DRAIN_TIMEOUT_MS', '30s']
    ]
    for (const [name, value] of bad) {
      const field = name.replace('TASKMESH_', '').toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())
      expect(() => withEnv({ [name]: value }), `${name}=${value}`).toThrow(new RegExp(`field "${field}" must be integer`))
    }
  })
})

describe('config: relations between settings', () => {
  it('wants a result grace of at least the abort grace: a worker may still be stopping a timed-out handler', () => {
    expect(() => withFlags({ abortGraceMs: 5_001 })).toThrow(/"resultGraceMs" \(5000\) must be at least abortGraceMs \(5001\)/)
    expect(withFlags({ abortGraceMs: 5_000 }).abortGraceMs).toBe(5_000)
    expect(withFlags({ resultGraceMs: 0, abortGraceMs: 0 }).resultGraceMs).toBe(0)
  })

  it('wants a failure timeout strictly above three heartbeat intervals', () => {
    expect(() => withFlags({ heartbeatIntervalMs: 100, failureTimeoutMs: 300 })).toThrow(/must exceed 3 x heartbeatIntervalMs/)
    expect(withFlags({ heartbeatIntervalMs: 100, failureTimeoutMs: 301 }).failureTimeoutMs).toBe(301)
    expect(DEFAULTS.failureTimeoutMs).toBeGreaterThan(3 * DEFAULTS.heartbeatIntervalMs)
  })

  it('wants retryMaxMs >= retryBaseMs and maxRpcFrameBytes >= 4 x maxPayloadBytes', () => {
    expect(() => withFlags({ retryBaseMs: 1_000, retryMaxMs: 999 })).toThrow(/"retryMaxMs" \(999\) must be at least retryBaseMs/)
    expect(withFlags({ retryBaseMs: 1_000, retryMaxMs: 1_000 }).retryMaxMs).toBe(1_000)
    expect(() => withFlags({ maxPayloadBytes: 1024 * 1024, maxRpcFrameBytes: 4 * 1024 * 1024 - 1 })).toThrow(/"maxRpcFrameBytes".*at least 4 x maxPayloadBytes/)
    expect(withFlags({ maxPayloadBytes: 1024 * 1024, maxRpcFrameBytes: 4 * 1024 * 1024 }).maxRpcFrameBytes).toBe(4 * 1024 * 1024)
  })

  it('bounds the task defaults by what the wire protocol accepts, so a default never makes a task other nodes refuse', () => {
    expect(withFlags({ defaultMaxAttempts: MAX_ATTEMPTS }).defaultMaxAttempts).toBe(MAX_ATTEMPTS)
    expect(() => withFlags({ defaultMaxAttempts: MAX_ATTEMPTS + 1 })).toThrow(/field "defaultMaxAttempts"/)
    expect(withFlags({ defaultTimeoutMs: MAX_TASK_TIMEOUT_MS }).defaultTimeoutMs).toBe(MAX_TASK_TIMEOUT_MS)
    expect(() => withFlags({ defaultTimeoutMs: MAX_TASK_TIMEOUT_MS + 1 })).toThrow(/field "defaultTimeoutMs"/)
    expect(() => withFlags({ name: 'n'.repeat(MAX_NODE_NAME_LENGTH + 1) })).toThrow(/field "name"/)
    expect(withFlags({ handlers: { ['t'.repeat(MAX_TYPE_LENGTH)]: './h.js' } }).handlers).toHaveProperty('t'.repeat(MAX_TYPE_LENGTH))
    expect(() => withFlags({ handlers: { ['t'.repeat(MAX_TYPE_LENGTH + 1)]: './h.js' } })).toThrow(/field "handlers" must be an object whose keys match/)
  })
})

describe('config: defaults stated once', () => {
  it('exports the defaults frozen, equal to the schema\'s', () => {
    expect(DEFAULTS).toEqual(defaults())
    expect(Object.isFrozen(DEFAULTS)).toBe(true)
    expect(Object.isFrozen(DEFAULTS.listen)).toBe(true)
    // loadConfig's result is the caller's own: changing it leaves the defaults alone.
    withFlags({}).listen.push('/ip4/127.0.0.1/tcp/1')
    expect(DEFAULTS.listen).toEqual(defaults().listen)
  })

  it('derives the tick from the heartbeat interval: half of it, within 10-100 ms', () => {
    expect(tickIntervalMs(DEFAULTS.heartbeatIntervalMs)).toBe(100)
    expect(tickIntervalMs(100)).toBe(50)
    expect(tickIntervalMs(20)).toBe(10)
    expect(tickIntervalMs(60_000)).toBe(100)
  })

  it('states in `taskmesh start --help` the defaults config.ts holds', () => {
    const help = execFileSync(process.execPath, [join(import.meta.dirname, '../../bin/taskmesh.js'), 'start', '--help'], { encoding: 'utf8' }).replace(/\s+/g, ' ')
    for (const text of [`default ${DEFAULTS.httpHost}`, `default ${DEFAULTS.httpPort}`, `default ${DEFAULTS.dataDir}`, `default ${DEFAULTS.heartbeatIntervalMs}`, `default ${DEFAULTS.failureTimeoutMs}`, `default ${DEFAULTS.cluster}`]) {
      expect(help).toContain(text)
    }
  })
})
