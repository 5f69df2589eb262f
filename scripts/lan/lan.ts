/**
 * A simulated LAN of Linux network namespaces: N hosts, each its own
 * namespace with an address in 198.18.0.0/15 (the benchmarking range, never
 * routed), joined by a bridge that lives in a namespace of its own. Nothing
 * is attached to the machine's own network: the only way out of a host is the
 * bridge, and the bridge leads only to the other hosts (and to the
 * controller address on the bridge itself, where chaos and bench runs live).
 *
 * Each host has loopback up and a multicast route on its link, so mDNS works
 * across hosts exactly as on a real LAN. Partitions detach hosts from the
 * bridge (a second bridge for the other side of a split, so each side still
 * hears itself), or set a host's link down.
 *
 * Every name carries a run prefix (`tml<id>-`), so parallel runs never meet,
 * and `down` removes exactly one run's namespaces (and with them every link).
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'

export interface LanHost {
  /** 1-based index. */
  index: number
  /** Namespace name. */
  ns: string
  /** IPv4 address on the LAN. */
  addr: string
  /** The host's end of its link (inside the host namespace). */
  dev: string
  /** The bridge's end of its link (inside the bridge namespace). */
  port: string
}

export interface Lan {
  prefix: string
  /** Namespace holding the bridges (and the controller address). */
  bridgeNs: string
  /** The controller's address on the main bridge. */
  controllerAddr: string
  hosts: LanHost[]
}

/** Prefix of every namespace this tool creates. */
export const LAN_PREFIX = 'tml'
const MAIN_BRIDGE = 'br0'
const SPLIT_BRIDGE = 'br1'

export class LanError extends Error {
  override name = 'LanError'
}

function ip (args: string[]): string {
  try {
    return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const e = err as { stderr?: string, message: string, code?: string }
    if (e.code === 'ENOENT') throw new LanError('the `ip` command (iproute2) is not installed')
    throw new LanError(`ip ${args.join(' ')}: ${(e.stderr ?? e.message).trim()}`)
  }
}

/** Throws a LanError saying what is missing when this process cannot create namespaces. */
export function checkCapabilities (): void {
  if (process.platform !== 'linux') throw new LanError('the simulated LAN needs Linux network namespaces')
  if (process.getuid?.() !== 0) {
    throw new LanError('creating network namespaces needs root (ip netns): run as root, or inside `unshare --user --map-root-user --net --mount` with a private /run/netns')
  }
  ip(['-V'])
}

export function newPrefix (): string {
  return `${LAN_PREFIX}${randomBytes(3).toString('hex')}-`
}

/** The address of host `index` (1-based): 198.18.<index / 250>.<10 + index % 250>. */
export function hostAddr (index: number): string {
  return `198.18.${Math.floor(index / 250)}.${10 + (index % 250)}`
}

/**
 * Creates the bridge namespace and `hosts` host namespaces. On any error it
 * removes what it created and rethrows.
 */
export function lanUp (hosts: number, prefix = newPrefix()): Lan {
  if (!Number.isInteger(hosts) || hosts < 1 || hosts > 1000) throw new LanError(`--hosts must be 1-1000, got ${hosts}`)
  checkCapabilities()
  const lan: Lan = { prefix, bridgeNs: `${prefix}br`, controllerAddr: '198.18.0.1', hosts: [] }
  try {
    ip(['netns', 'add', lan.bridgeNs])
    ip(['-n', lan.bridgeNs, 'link', 'set', 'lo', 'up'])
    for (const br of [MAIN_BRIDGE, SPLIT_BRIDGE]) {
      // No multicast snooping: mDNS floods to every port, as on a plain switch.
      ip(['-n', lan.bridgeNs, 'link', 'add', br, 'type', 'bridge', 'mcast_snooping', '0', 'stp_state', '0', 'forward_delay', '0'])
      ip(['-n', lan.bridgeNs, 'link', 'set', br, 'up'])
    }
    ip(['-n', lan.bridgeNs, 'addr', 'add', `${lan.controllerAddr}/15`, 'dev', MAIN_BRIDGE])
    ip(['-n', lan.bridgeNs, 'route', 'add', '224.0.0.0/4', 'dev', MAIN_BRIDGE])
    for (let i = 1; i <= hosts; i++) {
      const h: LanHost = { index: i, ns: `${prefix}h${i}`, addr: hostAddr(i), dev: 'eth0', port: `p${i}` }
      ip(['netns', 'add', h.ns])
      ip(['-n', lan.bridgeNs, 'link', 'add', h.port, 'type', 'veth', 'peer', 'name', h.dev, 'netns', h.ns])
      ip(['-n', lan.bridgeNs, 'link', 'set', h.port, 'master', MAIN_BRIDGE, 'up'])
      ip(['-n', h.ns, 'link', 'set', 'lo', 'up'])
      ip(['-n', h.ns, 'addr', 'add', `${h.addr}/15`, 'dev', h.dev])
      ip(['-n', h.ns, 'link', 'set', h.dev, 'up'])
      ip(['-n', h.ns, 'route', 'add', '224.0.0.0/4', 'dev', h.dev])
      lan.hosts.push(h)
    }
  } catch (err) {
    lanDown(prefix)
    throw err
  }
  return lan
}

/** Namespaces that belong to the run `prefix` (every run's, for the bare LAN_PREFIX). */
export function lanNamespaces (prefix: string): string[] {
  return ip(['netns', 'list']).split('\n').map(l => l.split(' ')[0] ?? '').filter(n => n.startsWith(prefix) && n.length > 0)
}

/** Removes the namespaces of run `prefix` (their links go with them). Never throws. */
export function lanDown (prefix: string): string[] {
  if (!prefix.startsWith(LAN_PREFIX)) throw new LanError(`refusing to remove namespaces not made by this tool (prefix "${prefix}")`)
  let names: string[] = []
  try { names = lanNamespaces(prefix) } catch { return [] }
  // Processes left in them (nodes of a run that was killed) go first: a namespace lives while they do.
  for (const n of names) {
    try {
      for (const pid of ip(['netns', 'pids', n]).split('\n').map(Number).filter(p => p > 0)) {
        try { process.kill(pid, 'SIGCONT'); process.kill(pid, 'SIGKILL') } catch { /* gone */ }
      }
    } catch { /* no pids */ }
  }
  for (const n of names) {
    try { ip(['netns', 'del', n]) } catch { /* already gone */ }
  }
  return names
}

/**
 * Splits the LAN: hosts in `minority` move to a second bridge, so each side
 * hears only itself (the controller stays on the main bridge, with the
 * majority). `heal` puts everyone back.
 */
export function split (lan: Lan, minority: readonly LanHost[]): void {
  for (const h of minority) ip(['-n', lan.bridgeNs, 'link', 'set', h.port, 'master', SPLIT_BRIDGE])
}

/** Cuts one host off (its port leaves the bridge): it hears nobody, and nobody hears it. */
export function isolate (lan: Lan, host: LanHost): void {
  ip(['-n', lan.bridgeNs, 'link', 'set', host.port, 'nomaster'])
}

/** Sets a host's link down or up (a pulled cable). */
export function setLink (host: LanHost, up: boolean): void {
  ip(['-n', host.ns, 'link', 'set', host.dev, up ? 'up' : 'down'])
  if (up) {
    try { ip(['-n', host.ns, 'route', 'add', '224.0.0.0/4', 'dev', host.dev]) } catch { /* still there */ }
  }
}

/** Every host back on the main bridge with its link up. */
export function heal (lan: Lan): void {
  for (const h of lan.hosts) {
    ip(['-n', lan.bridgeNs, 'link', 'set', h.port, 'master', MAIN_BRIDGE])
    setLink(h, true)
  }
}

/** The command line that runs `argv` inside a namespace. */
export function inNamespace (ns: string, argv: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv]
}
