/**
 * The one place where every setting, its default and its meaning live.
 * Precedence, lowest to highest: defaults < cluster.config.json < CLI flags
 * < TASKMESH_* environment variables. Unknown or invalid fields fail at
 * start with a message naming the field and what was expected.
 *
 * Every setting's schema is one table on purpose (this file is where a
 * user's question "what does X do" is answered); the task options (handlers,
 * type limits, labels, placement, webhooks and callback delivery) are in
 * config-tasks.ts, merged into it in place, and the timings derived from
 * these settings in timings.ts.
 */
import { readFileSync, statSync } from 'node:fs'
import os from 'node:os'
import { dirname, resolve } from 'node:path'
import { Type } from '@sinclair/typebox'
import type { Static, TSchema } from '@sinclair/typebox'
import { Value } from '@sinclair/typebox/value'
import { BOOTSTRAP_FORMS, parseBootstrapEntry } from './bootstrap-entry.ts'
import { TASK_OPTION_FIELDS } from './config-tasks.ts'
import { MAX_ATTEMPTS, MAX_NODE_NAME_LENGTH, MAX_RETAIN_MS, MAX_TASK_TIMEOUT_MS } from './protocol/constants.ts'

export const ConfigSchema = Type.Object({
  /** Cluster name. Nodes only see members of the same cluster: it derives the mDNS service tag and the gossip topic. */
  cluster: Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9][A-Za-z0-9._-]*$', default: 'taskmesh' }),
  /** Human-readable node name; null means `<hostname>-<last 6 chars of the peer id>`. */
  name: Type.Union([Type.String({ minLength: 1, maxLength: MAX_NODE_NAME_LENGTH }), Type.Null()], { default: null }),
  /** libp2p listen multiaddrs. Port 0 picks a free port. */
  listen: Type.Array(Type.String({ minLength: 1 }), { default: ['/ip4/0.0.0.0/tcp/0'] }),
  /**
   * Address of the HTTP API. Loopback by default: the API is for this
   * machine's scripts. Any other address requires a `token`.
   */
  httpHost: Type.String({ minLength: 1, default: '127.0.0.1' }),
  /**
   * Bearer token every HTTP request but `GET /healthz` must carry
   * (`Authorization: Bearer <token>`); null means no check, which is only
   * allowed while the API listens on a loopback address. Prefer
   * TASKMESH_TOKEN to keeping it in a file.
   */
  token: Type.Union([Type.String({ minLength: 16, maxLength: 1024, pattern: '^[\\x21-\\x7e]+$' }), Type.Null()], { default: null }),
  /**
   * File holding the cluster's pre-shared key (libp2p private network, the
   * swarm.key format `taskmesh init` writes), relative to the config file's
   * folder. Only nodes with the same key can connect at all. null means no
   * key: any host on the LAN can join, and the node warns at start.
   */
  clusterKeyFile: Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null }),
  /** Port of the HTTP API (0 picks a free one). */
  httpPort: Type.Integer({ minimum: 0, maximum: 65535, default: 7420 }),
  /** Where the node keeps its identity key, term and (later) task records. */
  dataDir: Type.String({ minLength: 1, default: './taskmesh-data' }),
  /** How often the node publishes a heartbeat. */
  heartbeatIntervalMs: Type.Integer({ minimum: 20, maximum: 60_000, default: 250 }),
  /**
   * Heartbeat silence after which a member is declared dead, and so the
   * longest a silently vanished leader (paused process, cut link) stays
   * leader. Must exceed 3 x heartbeatIntervalMs. A crashed process is noticed
   * sooner: its closed connection is confirmed after 2 heartbeat intervals.
   */
  failureTimeoutMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 1500 }),
  /**
   * Live members a node must see to lead (and so to dispatch); 0 means no
   * quorum rule. Set a majority of the cluster's size (e.g. 2 of 3, 3 of 5)
   * so that the minority side of a partition dispatches nothing.
   */
  quorum: Type.Integer({ minimum: 0, maximum: 1000, default: 0 }),
  /** Task slots this node offers; null means one per CPU core. */
  capacity: Type.Union([Type.Integer({ minimum: 1, maximum: 1024 }), Type.Null()], { default: null }),
  /**
   * Peers to dial at start, for networks without multicast: `host:port` (a
   * DNS name or IP, no peer id; every address a name resolves to is dialled)
   * or a full multiaddr ending /p2p/<peer id>.
   */
  bootstrap: Type.Array(Type.String({ minLength: 1, maxLength: 1024 }), { default: [], maxItems: 256 }),
  /** How often `host:port` bootstrap entries are resolved and dialled again while no member is connected. */
  bootstrapRetryMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 5_000 }),
  /** Discover peers on the local network with mDNS. */
  mdns: Type.Boolean({ default: true }),
  /**
   * How often the cluster as a whole asks the local network for members by
   * mDNS (with `mdns` on). A new node asks as it starts, a node connected to
   * nobody again after 2 s, 4 s, ... up to this; connected members share the
   * queries (each asks every mdnsIntervalMs x (connected peers + 1)), since
   * every member answers every query to the whole group: a node receives
   * about N answers per interval, not N x N (see src/net/mdns-search.ts).
   * Shorter merges groups that never met sooner, at more multicast traffic.
   */
  mdnsIntervalMs: Type.Integer({ minimum: 100, maximum: 3_600_000, default: 5_000 }),
  ...TASK_OPTION_FIELDS,
  /**
   * Time a handler gets to honour `ctx.signal` (after its timeout or a
   * cancel) before its worker thread is terminated. A handler that must
   * clean up (close files, kill a child process) needs at least that long.
   */
  abortGraceMs: Type.Integer({ minimum: 0, maximum: 600_000, default: 2_000 }),
  /**
   * Time a stopping node (SIGTERM, `POST /v1/drain`) gives the attempts it
   * runs to finish; past it they stop and run again elsewhere, and the node
   * leaves within about a second. Kubernetes sends SIGKILL 30 s after
   * SIGTERM by default: give the pod a terminationGracePeriodSeconds a few
   * seconds above this. 0 stops at once (nothing waits).
   */
  drainTimeoutMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 30_000 }),
  /** Largest task payload (JSON bytes) accepted; larger ones get 413. */
  maxPayloadBytes: Type.Integer({ minimum: 1, maximum: 64 * 1024 * 1024, default: 1024 * 1024 }),
  /** Tasks the cluster may hold waiting (queued or retrying) before submits get 429. */
  maxQueuedTasks: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 100_000 }),
  /**
   * Tasks one node may hold accepted but not yet taken by a leader (while
   * there is none, e.g. without a quorum, they all wait here) before its
   * submits get 429.
   */
  maxQueuedTasksPerNode: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 100_000 }),
  /** Per-attempt time limit of a task that sets none. */
  defaultTimeoutMs: Type.Integer({ minimum: 1, maximum: MAX_TASK_TIMEOUT_MS, default: 300_000 }),
  /** Attempts of a task that sets none (1 = no retry). */
  defaultMaxAttempts: Type.Integer({ minimum: 1, maximum: MAX_ATTEMPTS, default: 3 }),
  /**
   * Time past an attempt's timeout the leader waits for the worker's result
   * before it counts the attempt as lost and retries the task. It covers the
   * worker's abort grace and the result's trip; a worker that died is noticed
   * sooner, by the failure detector.
   */
  resultGraceMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 5_000 }),
  /**
   * Attempts the leader keeps assigned per task slot of a worker. At 2 a
   * worker already holds its next task while it runs the current one, so a
   * slot never idles for a round trip to the leader; higher values queue more
   * on workers (less fair when one is slow), 1 queues everything on the leader.
   */
  outstandingPerSlot: Type.Integer({ minimum: 1, maximum: 16, default: 2 }),
  /**
   * How long a finished task's record (its result) is kept after it ended,
   * on every node holding it (7 days); then its id answers 404 TASK_EXPIRED
   * (while the node remembers the id). A submit may set its own `retainMs`.
   */
  retainFinishedMs: Type.Integer({ minimum: 1_000, maximum: MAX_RETAIN_MS, default: 7 * 86_400_000 }),
  /** Finished records one node keeps at most, whatever their age (the oldest endings go first): bounds its disk. */
  retainFinishedCount: Type.Integer({ minimum: 1, maximum: 100_000_000, default: 100_000 }),
  /**
   * Durable copies a task must be stored in before its submit is accepted.
   * 1: two nodes whenever a second live member exists, one on a lone node.
   * 2: two nodes or nothing: a submit that cannot reach a second live
   * member gets 503 UNAVAILABLE and nothing is accepted.
   */
  minCopies: Type.Integer({ minimum: 1, maximum: 2, default: 1 }),
  /** Backoff before the second attempt; doubles for each later one, up to retryMaxMs. */
  retryBaseMs: Type.Integer({ minimum: 0, maximum: 3_600_000, default: 500 }),
  retryMaxMs: Type.Integer({ minimum: 0, maximum: 86_400_000, default: 30_000 }),
  /** Largest frame on the node-to-node RPC protocol; a larger one resets the stream. */
  maxRpcFrameBytes: Type.Integer({ minimum: 64 * 1024, maximum: 1024 * 1024 * 1024, default: 64 * 1024 * 1024 }),
  /** Largest number of tasks in one `POST /v1/tasks/batch`, and of ids in one bulk wait (`POST /v1/tasks/wait`). */
  maxBatchTasks: Type.Integer({ minimum: 1, maximum: 100_000, default: 1000 }),
  /** Requests that may wait at once (`?wait=` on submit, batch or GET, and bulk waits: one each, however many ids); more get 429. */
  maxLongPolls: Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1000 }),
  /**
   * RPC frames one peer may send per second (a token bucket holding one
   * second's worth); a frame over the rate resets its stream.
   */
  maxRpcFramesPerSecond: Type.Integer({ minimum: 1, maximum: 10_000_000, default: 10_000 }),
  /** Clients that may follow GET /v1/events at once; one more gets 503. Each client's backlog is bounded: a client that falls behind is dropped. */
  maxEventStreams: Type.Integer({ minimum: 0, maximum: 10_000, default: 64 }),
  /** Log level: fatal, error, warn, info, debug, trace or silent. */
  logLevel: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' })
}, { additionalProperties: false })

export type Config = Static<typeof ConfigSchema>

/** Values that are null in the file and filled in at start. */
export interface ResolvedConfig extends Omit<Config, 'capacity'> {
  capacity: number
  /** The cluster key file's content (swarm.key format), or null without a key. */
  clusterKey: Uint8Array | null
  /** Folder that handler paths are relative to: the config file's, or the working directory. */
  baseDir: string
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** Environment variable for each field: cluster -> TASKMESH_CLUSTER, httpPort -> TASKMESH_HTTP_PORT. */
export function envName (field: string): string {
  return 'TASKMESH_' + field.replace(/[A-Z]/g, c => '_' + c).toUpperCase()
}

const fieldNames = Object.keys(ConfigSchema.properties) as Array<keyof Config>

/** Parses an environment string into the field's type (numbers, booleans, lists, null). */
function fromEnv (field: keyof Config, raw: string): unknown {
  const schema: TSchema = ConfigSchema.properties[field]
  const kinds = JSON.stringify(schema)
  if (schema.type === 'array') {
    // A JSON array (webhooks), or a comma list (listen, bootstrap).
    if (raw.trim().startsWith('[')) try { return JSON.parse(raw) as unknown } catch { return raw }
    return raw.split(',').map(s => s.trim()).filter(s => s.length > 0)
  }
  if (schema.type === 'object') {
    try { return JSON.parse(raw) as unknown } catch { return raw }
  }
  if (raw === 'null' && kinds.includes('"null"')) return null
  if (kinds.includes('"integer"')) return /^-?\d+$/.test(raw) ? Number(raw) : raw
  if (schema.type === 'boolean') return raw === 'true' ? true : raw === 'false' ? false : raw
  return raw
}

function describe (schema: TSchema): string {
  if (schema.anyOf !== undefined) return (schema.anyOf as TSchema[]).map(describe).join(' or ')
  if (schema.const !== undefined) return JSON.stringify(schema.const)
  const bounds: string[] = []
  if (schema.minimum !== undefined) bounds.push(`>= ${schema.minimum}`)
  if (schema.maximum !== undefined) bounds.push(`<= ${schema.maximum}`)
  if (schema.pattern !== undefined) bounds.push(`matching ${schema.pattern}`)
  if (schema.type === 'array') return `an array of ${describe(schema.items as TSchema)}s`
  if (schema.patternProperties !== undefined) return `an object whose keys match ${Object.keys(schema.patternProperties as object).join(' or ')}`
  return [schema.type, ...bounds].join(' ')
}

/** Keys that could reach an object's prototype if merged anywhere: refused at any depth. */
const PROTOTYPE_KEYS = new Set(['__proto__', 'constructor', 'prototype'])

/** The path of the first prototype key in `value`, searched without recursion, or undefined. */
function prototypeKeyPath (value: unknown): string | undefined {
  const stack: Array<[unknown, string]> = [[value, '']]
  while (stack.length > 0) {
    const [v, path] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    for (const key of Object.keys(v)) {
      if (PROTOTYPE_KEYS.has(key)) return `${path}/${key}`
      stack.push([(v as Record<string, unknown>)[key], `${path}/${key}`])
    }
  }
  return undefined
}

/** Validates a partial config (from any source) and names the first bad field. */
export function validateLayer (layer: Record<string, unknown>, source: string): Partial<Config> {
  const proto = prototypeKeyPath(layer)
  if (proto !== undefined) {
    const field = proto.split('/')[1]!
    throw new ConfigError(PROTOTYPE_KEYS.has(field) ? `${source}: unknown field "${field}"; known fields: ${fieldNames.join(', ')}` : `${source}: field "${field}" must not contain the key at ${proto} (__proto__, constructor and prototype are refused)`)
  }
  for (const key of Object.keys(layer)) {
    if (!fieldNames.includes(key as keyof Config)) {
      throw new ConfigError(`${source}: unknown field "${key}"; known fields: ${fieldNames.join(', ')}`)
    }
  }
  for (const key of fieldNames) {
    if (!(key in layer)) continue
    const schema = ConfigSchema.properties[key]
    if (!Value.Check(schema, layer[key])) {
      throw new ConfigError(`${source}: field "${key}" must be ${describe(schema)}, got ${JSON.stringify(layer[key])}`)
    }
  }
  const bad = (layer.bootstrap as string[] | undefined)?.findIndex(e => parseBootstrapEntry(e) === null) ?? -1
  if (bad >= 0) {
    throw new ConfigError(`${source}: field "bootstrap" entry ${bad + 1} (${JSON.stringify((layer.bootstrap as string[])[bad])}) must be ${BOOTSTRAP_FORMS}`)
  }
  return layer as Partial<Config>
}

export function readConfigFile (path: string): Partial<Config> {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`cannot read config file ${path}: ${(err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new ConfigError(`${path}: not valid JSON: ${(err as Error).message}`)
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`${path}: must hold a JSON object`)
  }
  return validateLayer(parsed as Record<string, unknown>, path)
}

export function envLayer (env: NodeJS.ProcessEnv): Partial<Config> {
  const layer: Record<string, unknown> = {}
  for (const field of fieldNames) {
    const raw = env[envName(field)]
    if (raw !== undefined) layer[field] = fromEnv(field, raw)
  }
  return validateLayer(layer, 'environment')
}

export interface LoadOptions {
  /** Path of the config file; when undefined, ./cluster.config.json is read if it exists. */
  file?: string
  /** Values from CLI flags. */
  flags?: Partial<Config>
  env?: NodeJS.ProcessEnv
  /** Working directory, for the default config file. */
  cwd?: string
}

export function defaults (): Config {
  return Value.Create(ConfigSchema)
}

/**
 * The defaults, for code that states one (CLI help, the simulator, scripts)
 * instead of restating its number.
 */
export const DEFAULTS: Readonly<Config> = Object.freeze(Object.fromEntries(Object.entries(defaults()).map(([k, v]) => [k, typeof v === 'object' && v !== null ? Object.freeze(v) : v])) as Config)

/** Merges defaults, file, flags and environment, validates the result and the relations between fields. */
export function loadConfig (opts: LoadOptions = {}): ResolvedConfig {
  const cwd = opts.cwd ?? process.cwd()
  let fileLayer: Partial<Config> = {}
  let baseDir = cwd
  if (opts.file !== undefined) {
    fileLayer = readConfigFile(opts.file)
    baseDir = dirname(resolve(cwd, opts.file))
  } else {
    const implicit = `${cwd}/cluster.config.json`
    try {
      readFileSync(implicit)
      fileLayer = readConfigFile(implicit)
    } catch (err) {
      if (err instanceof ConfigError && !/cannot read/.test(err.message)) throw err
    }
  }
  const merged: Config = {
    ...defaults(),
    ...fileLayer,
    ...validateLayer(stripUndefined(opts.flags ?? {}), 'command line'),
    ...envLayer(opts.env ?? process.env)
  }
  if (merged.failureTimeoutMs <= 3 * merged.heartbeatIntervalMs) {
    throw new ConfigError(`field "failureTimeoutMs" (${merged.failureTimeoutMs}) must exceed 3 x heartbeatIntervalMs (${3 * merged.heartbeatIntervalMs}), or one late heartbeat kills a member`)
  }
  if (merged.maxRpcFrameBytes < 4 * merged.maxPayloadBytes) {
    throw new ConfigError(`field "maxRpcFrameBytes" (${merged.maxRpcFrameBytes}) must be at least 4 x maxPayloadBytes (${4 * merged.maxPayloadBytes}): a result and its updates must fit one frame`)
  }
  if (merged.resultGraceMs < merged.abortGraceMs) {
    throw new ConfigError(`field "resultGraceMs" (${merged.resultGraceMs}) must be at least abortGraceMs (${merged.abortGraceMs}): a worker may still be stopping a timed-out handler that long before it reports`)
  }
  if (merged.callbackRetryMaxMs < merged.callbackRetryBaseMs) {
    throw new ConfigError(`field "callbackRetryMaxMs" (${merged.callbackRetryMaxMs}) must be at least callbackRetryBaseMs (${merged.callbackRetryBaseMs})`)
  }
  if (merged.retryMaxMs < merged.retryBaseMs) {
    throw new ConfigError(`field "retryMaxMs" (${merged.retryMaxMs}) must be at least retryBaseMs (${merged.retryBaseMs})`)
  }
  if (merged.token === null && !isLoopback(merged.httpHost)) {
    throw new ConfigError(`field "httpHost" (${merged.httpHost}) is not a loopback address, so the API needs a bearer token: set "token" or TASKMESH_TOKEN (e.g. \`openssl rand -hex 32\`)`)
  }
  const clusterKey = merged.clusterKeyFile === null ? null : readClusterKey(resolve(baseDir, merged.clusterKeyFile))
  return { ...merged, capacity: merged.capacity ?? os.availableParallelism(), baseDir, clusterKey }
}

/** True for addresses only this machine can reach: 127.0.0.0/8, ::1, localhost. */
export function isLoopback (host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase()
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || /^::ffff:127\./.test(h)
}

/** The swarm.key format of libp2p private networks: a 32-byte key in hex. */
export const CLUSTER_KEY_PATTERN = /^\/key\/swarm\/psk\/1\.0\.0\/\r?\n\/base16\/\r?\n[0-9a-fA-F]{64}\s*$/

/** Formats a 32-byte key as a cluster key file. */
export function formatClusterKey (key: Uint8Array): string {
  if (key.byteLength !== 32) throw new Error('a cluster key is 32 bytes')
  return `/key/swarm/psk/1.0.0/\n/base16/\n${Buffer.from(key).toString('hex')}\n`
}

function readClusterKey (path: string): Uint8Array {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigError(`field "clusterKeyFile": cannot read ${path}: ${(err as Error).message}`)
  }
  if (!CLUSTER_KEY_PATTERN.test(text)) {
    throw new ConfigError(`field "clusterKeyFile": ${path} is not a cluster key (expected "/key/swarm/psk/1.0.0/", "/base16/" and 64 hex digits on three lines, as \`taskmesh init\` writes)`)
  }
  const hex = text.trim().split(/\r?\n/)[2]!.toLowerCase()
  return new TextEncoder().encode(formatClusterKey(Buffer.from(hex, 'hex')).trim())
}

/** True when a file can be read by users other than its owner (a key file should not be). */
export function readableByOthers (path: string): boolean {
  if (process.platform === 'win32') return false
  return (statSync(path).mode & 0o077) !== 0
}

function stripUndefined (o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined))
}
