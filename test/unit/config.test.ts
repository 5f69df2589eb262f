import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ConfigError, defaults, envName, isLoopback, loadConfig } from '../../src/config.ts'
import { initCluster, keyFileFor } from '../../src/cli/init.ts'

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

/** A temporary folder, removed after the test. */
function tempDir (prefix: string): string {
  const dir = mkdtempSync(join(os.tmpdir(), prefix))
  dirs.push(dir)
  return dir
}

function file (content: unknown): string {
  const dir = tempDir('taskmesh-config-')
  const path = join(dir, 'cluster.config.json')
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content))
  return path
}

const noEnv = {}

describe('config', () => {
  it('has a default for every field, with the API on loopback', () => {
    const c = loadConfig({ env: noEnv, cwd: os.tmpdir() })
    expect(c.httpHost).toBe('127.0.0.1')
    expect(c.capacity).toBe(os.availableParallelism())
    expect(Object.keys(defaults()).sort()).toEqual(['abortGraceMs', 'bootstrap', 'bootstrapRetryMs', 'callbackMaxAttempts', 'callbackRetryBaseMs', 'callbackRetryMaxMs', 'callbackTimeoutMs', 'capacity', 'cluster', 'clusterKeyFile', 'dataDir', 'defaultMaxAttempts', 'defaultTimeoutMs', 'drainTimeoutMs', 'failureTimeoutMs', 'handlers', 'heartbeatIntervalMs', 'httpHost', 'httpPort', 'labels', 'listen', 'logLevel', 'maxBatchTasks', 'maxEventStreams', 'maxLongPolls', 'maxPayloadBytes', 'maxQueuedTasks', 'maxQueuedTasksPerNode', 'maxRpcFrameBytes', 'maxRpcFramesPerSecond', 'mdns', 'mdnsIntervalMs', 'minCopies', 'name', 'outstandingPerSlot', 'placement', 'quorum', 'resultGraceMs', 'retainFinishedCount', 'retainFinishedMs', 'retryBaseMs', 'retryMaxMs', 'token', 'types', 'webhookSecret', 'webhooks'])
  })

  it('takes per-type limits from the file or TASKMESH_TYPES, and rejects a limit out of range naming the field', () => {
    expect(loadConfig({ file: file({ types: { resize: { maxConcurrent: 2, perSecond: 0.5 } } }), env: noEnv }).types).toEqual({ resize: { maxConcurrent: 2, perSecond: 0.5 } })
    expect(loadConfig({ env: { TASKMESH_TYPES: '{"mail": {"perSecond": 10}}' }, cwd: os.tmpdir() }).types).toEqual({ mail: { perSecond: 10 } })
    expect(() => loadConfig({ file: file({ types: { resize: { maxConcurrent: 0 } } }), env: noEnv })).toThrow(/types/)
    expect(() => loadConfig({ file: file({ types: { resize: { concurrency: 2 } } }), env: noEnv })).toThrow(/types/)
  })

  it('takes node labels and the placement strategy from the file, flags or environment, and names a bad one', () => {
    expect(loadConfig({ env: noEnv, cwd: os.tmpdir() })).toMatchObject({ labels: {}, placement: 'least-loaded' })
    expect(loadConfig({ file: file({ labels: { gpu: 'a100', zone: 'rack2' }, placement: 'round-robin' }), env: noEnv })).toMatchObject({ labels: { gpu: 'a100', zone: 'rack2' }, placement: 'round-robin' })
    expect(loadConfig({ flags: { labels: { gpu: 'h100' } }, env: { TASKMESH_PLACEMENT: 'most-free-slots' }, cwd: os.tmpdir() })).toMatchObject({ labels: { gpu: 'h100' }, placement: 'most-free-slots' })
    expect(loadConfig({ env: { TASKMESH_LABELS: '{"gpu": "a100"}' }, cwd: os.tmpdir() }).labels).toEqual({ gpu: 'a100' })
    expect(() => loadConfig({ file: file({ labels: { gpu: '*' } }), env: noEnv })).toThrow(/field "labels"/)
    expect(() => loadConfig({ file: file({ labels: { 'bad key': 'x' } }), env: noEnv })).toThrow(/field "labels"/)
    expect(() => loadConfig({ env: { TASKMESH_PLACEMENT: 'random' }, cwd: os.tmpdir() })).toThrow(/field "placement"/)
  })

  it('takes webhooks from the file or TASKMESH_WEBHOOKS (JSON), and names a bad one', () => {
    expect(loadConfig({ env: noEnv, cwd: os.tmpdir() })).toMatchObject({ webhooks: [], webhookSecret: null, callbackMaxAttempts: 12 })
    const hooks = [{ url: 'https://example.test/hook', events: ['failed'], headers: { authorization: 'Bearer x' } }]
    expect(loadConfig({ file: file({ webhooks: hooks, webhookSecret: 'sixteen-chars-ok!' }), env: noEnv })).toMatchObject({ webhooks: hooks, webhookSecret: 'sixteen-chars-ok!' })
    expect(loadConfig({ env: { TASKMESH_WEBHOOKS: JSON.stringify(hooks), TASKMESH_WEBHOOK_SECRET: 'from-the-environment' }, cwd: os.tmpdir() })).toMatchObject({ webhooks: hooks, webhookSecret: 'from-the-environment' })
    expect(() => loadConfig({ file: file({ webhooks: [{ url: 'ftp://example.test' }] }), env: noEnv })).toThrow(/field "webhooks"/)
    expect(() => loadConfig({ file: file({ webhooks: [{ url: 'https://example.test', events: ['queued'] }] }), env: noEnv })).toThrow(/field "webhooks"/)
    expect(() => loadConfig({ file: file({ webhookSecret: 'short' }), env: noEnv })).toThrow(/field "webhookSecret"/)
    expect(() => loadConfig({ file: file({ callbackRetryBaseMs: 5_000, callbackRetryMaxMs: 1_000 }), env: noEnv })).toThrow(/callbackRetryMaxMs/)
  })

  it('layers file < flags < environment', () => {
    const path = file({ cluster: 'from-file', httpPort: 8000, heartbeatIntervalMs: 100 })
    const c = loadConfig({ file: path, flags: { httpPort: 8001, cluster: 'from-flag' }, env: { TASKMESH_CLUSTER: 'from-env', TASKMESH_MDNS: 'false', TASKMESH_BOOTSTRAP: '/ip4/198.18.0.1/tcp/1/p2p/x, /ip4/198.18.0.2/tcp/1/p2p/y' } })
    expect(c.cluster).toBe('from-env')
    expect(c.httpPort).toBe(8001)
    expect(c.heartbeatIntervalMs).toBe(100)
    expect(c.mdns).toBe(false)
    expect(c.bootstrap).toEqual(['/ip4/198.18.0.1/tcp/1/p2p/x', '/ip4/198.18.0.2/tcp/1/p2p/y'])
  })

  it('limits event streams to 64 by default, settable by environment, never negative', () => {
    expect(loadConfig({ env: noEnv, cwd: os.tmpdir() }).maxEventStreams).toBe(64)
    expect(loadConfig({ env: { TASKMESH_MAX_EVENT_STREAMS: '3' }, cwd: os.tmpdir() }).maxEventStreams).toBe(3)
    expect(() => loadConfig({ env: { TASKMESH_MAX_EVENT_STREAMS: '-1' }, cwd: os.tmpdir() })).toThrow(/field "maxEventStreams"/)
  })

  it('names each environment variable after its field', () => {
    expect(envName('httpPort')).toBe('TASKMESH_HTTP_PORT')
    expect(envName('failureTimeoutMs')).toBe('TASKMESH_FAILURE_TIMEOUT_MS')
  })

  it('rejects an unknown field, naming it', () => {
    expect(() => loadConfig({ file: file({ clustr: 'x' }), env: noEnv })).toThrow(/unknown field "clustr"/)
  })

  it('rejects a wrong type, naming the field and what was expected', () => {
    expect(() => loadConfig({ file: file({ httpPort: 'eighty' }), env: noEnv })).toThrow(ConfigError)
    expect(() => loadConfig({ file: file({ httpPort: 'eighty' }), env: noEnv })).toThrow(/field "httpPort" must be integer >= 0 <= 65535, got "eighty"/)
    expect(() => loadConfig({ env: { TASKMESH_HEARTBEAT_INTERVAL_MS: 'fast' }, cwd: os.tmpdir() })).toThrow(/environment: field "heartbeatIntervalMs"/)
  })

  it('takes bootstrap entries as host:port (DNS name, IPv4 or [IPv6]) or as multiaddrs with /p2p/<id>, and rejects others naming the field and the entry', () => {
    const good = ['seeds.taskmesh.internal:7000', 'localhost:1', '198.18.0.1:65535', '[fd00::1]:7000', 'seeds.example.:7000', '/ip4/198.18.0.1/tcp/1/p2p/12D3KooWx', '/dns4/seeds.example/tcp/7000/p2p/12D3KooWx']
    expect(loadConfig({ env: { TASKMESH_BOOTSTRAP: good.join(',') }, cwd: os.tmpdir() }).bootstrap).toEqual(good)
    expect(loadConfig({ env: noEnv, cwd: os.tmpdir() }).bootstrapRetryMs).toBe(5_000)
    const bad = ['seeds.example', 'seeds.example:0', 'seeds.example:65536', 'seeds.example:70000', '/ip4/198.18.0.1/tcp/1', 'http://seeds.example:7000', '-bad.example:1', 'fd00::1:7000', '[seeds.example]:1', 'a_b.example:1', '1.2.3:7000', '300.1.1.1:7000', ' seeds.example:1']
    for (const entry of bad) {
      expect(() => loadConfig({ file: file({ bootstrap: ['ok.example:1', entry] }), env: noEnv }), entry).toThrow(`field "bootstrap" entry 2 (${JSON.stringify(entry)}) must be host:port`)
    }
    expect(() => loadConfig({ flags: { bootstrap: ['nope'] }, env: noEnv, cwd: os.tmpdir() })).toThrow(/^command line: field "bootstrap" entry 1/)
    expect(() => loadConfig({ env: { TASKMESH_BOOTSTRAP_RETRY_MS: '99' }, cwd: os.tmpdir() })).toThrow(/field "bootstrapRetryMs"/)
  })

  it('rejects malformed JSON and a non-object', () => {
    expect(() => loadConfig({ file: file('{"cluster": '), env: noEnv })).toThrow(/not valid JSON/)
    expect(() => loadConfig({ file: file('[1]'), env: noEnv })).toThrow(/must hold a JSON object/)
  })

  it('rejects a failure timeout that does not exceed three heartbeats', () => {
    expect(() => loadConfig({ flags: { heartbeatIntervalMs: 500, failureTimeoutMs: 1500 }, env: noEnv, cwd: os.tmpdir() })).toThrow(/failureTimeoutMs.*must exceed 3 x heartbeatIntervalMs/)
  })

  it('ships a cluster.config.json that is valid and equal to the defaults it sets', () => {
    const c = loadConfig({ file: join(import.meta.dirname, '../../cluster.config.json'), env: noEnv })
    expect(c.cluster).toBe(defaults().cluster)
    expect(c.failureTimeoutMs).toBe(defaults().failureTimeoutMs)
  })

  it('refuses an API on a non-loopback address without a token, and takes TASKMESH_TOKEN', () => {
    const cwd = os.tmpdir()
    expect(() => loadConfig({ flags: { httpHost: '0.0.0.0' }, env: noEnv, cwd })).toThrow(/"httpHost" \(0\.0\.0\.0\) is not a loopback address.*token/)
    expect(loadConfig({ flags: { httpHost: '0.0.0.0' }, env: { TASKMESH_TOKEN: 'a-long-enough-secret' }, cwd }).token).toBe('a-long-enough-secret')
    expect(() => loadConfig({ env: { TASKMESH_TOKEN: 'short' }, cwd })).toThrow(/field "token"/)
    expect(() => loadConfig({ env: { TASKMESH_TOKEN: 'has spaces in it, which is bad' }, cwd })).toThrow(/field "token"/)
    for (const h of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost']) expect(isLoopback(h)).toBe(true)
    for (const h of ['0.0.0.0', '::', '192.168.1.10', '128.0.0.1', 'example.com']) expect(isLoopback(h)).toBe(false)
  })

  it('reads the cluster key that taskmesh init writes (mode 0600), relative to the config, and rejects a bad key file', () => {
    const dir = tempDir('taskmesh-init-')
    const a = initCluster({ out: join(dir, 'a.json'), cluster: 'prod' })
    const b = initCluster({ out: join(dir, 'b.config.json'), token: true })
    expect(keyFileFor('/x/cluster.config.json')).toBe('cluster.key')
    expect(statSync(a.keyFile).mode & 0o777).toBe(0o600)
    expect(statSync(b.configFile).mode & 0o777).toBe(0o600)
    const ca = loadConfig({ file: a.configFile, env: noEnv })
    const cb = loadConfig({ file: b.configFile, env: noEnv })
    expect(ca.cluster).toBe('prod')
    expect(new TextDecoder().decode(ca.clusterKey!)).toMatch(/^\/key\/swarm\/psk\/1\.0\.0\/\n\/base16\/\n[0-9a-f]{64}$/)
    expect(Buffer.from(ca.clusterKey!).equals(Buffer.from(cb.clusterKey!))).toBe(false)
    expect(cb.token).toMatch(/^[0-9a-f]{64}$/)
    expect(() => initCluster({ out: a.configFile })).toThrow(/exists/)
    writeFileSync(join(dir, 'bad.key'), 'not a key')
    expect(() => loadConfig({ file: file({ clusterKeyFile: join(dir, 'bad.key') }), env: noEnv })).toThrow(/"clusterKeyFile".*is not a cluster key/)
    expect(() => loadConfig({ file: file({ clusterKeyFile: join(dir, 'missing.key') }), env: noEnv })).toThrow(/"clusterKeyFile": cannot read/)
  })
})
