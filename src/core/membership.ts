import type { CoreEvent, Heartbeat, Incarnation, Leaving, Member, MemberInfo, MemberStatus } from './types.ts'
import { MAX_DEAD_LISTED } from '../protocol/constants.ts'

/** A member that is no longer part of the cluster: declared dead, or announced it left. */
export function isGone (status: MemberStatus): boolean {
  return status === 'dead' || status === 'left'
}

const LEAVING_REASON: Record<Leaving, string> = { draining: 'draining: finishing its work before it leaves', left: 'left the cluster' }

export interface FailureDetectorConfig {
  /** How often members publish heartbeats. */
  heartbeatIntervalMs: number
  /** Heartbeat silence after which a member is declared dead. */
  failureTimeoutMs: number
  /** How long a dead member stays listed (and in the dead list that lets it refute). */
  deadRetentionMs: number
  /** The silence a member known only from state syncs is given before it is declared dead (absent: as any other). */
  syncWaitMs?: number
}

/** Silence after which a member is shown as `suspect` (it still counts as live). */
export function suspectAfterMs (config: FailureDetectorConfig): number {
  return Math.floor(config.failureTimeoutMs / 2)
}

/**
 * The silence limits of a member that publishes every `intervalMs`: the
 * failure timeout is given for members that publish every
 * heartbeatIntervalMs (the leader, joining nodes, small clusters), and a
 * member that announced a slower cadence (a follower of a large cluster)
 * gets as many of its own intervals: dead after failureTimeoutMs x
 * intervalMs / heartbeatIntervalMs of silence, suspect after half of that.
 */
export function silenceLimitsMs (config: FailureDetectorConfig, intervalMs: number): { suspectMs: number, deadMs: number } {
  const scale = Math.max(1, intervalMs / config.heartbeatIntervalMs)
  const deadMs = Math.round(config.failureTimeoutMs * scale)
  return { suspectMs: Math.floor(deadMs / 2), deadMs }
}

/** Added to the two intervals a disconnect hint waits: room for a heartbeat's delivery. */
const HINT_SLACK_MS = 100

/**
 * How long a disconnect hint waits for a heartbeat before it is believed:
 * two heartbeat intervals, so one lost or late heartbeat does not kill a
 * member whose connection was merely pruned and re-dialled.
 */
export function hintConfirmMs (config: FailureDetectorConfig): number {
  return Math.min(2 * config.heartbeatIntervalMs + HINT_SLACK_MS, config.failureTimeoutMs)
}

/**
 * The members one node knows of and a failure detector over them.
 * It decides statuses from heartbeat silence and disconnect hints; it does
 * not decide who may join or who leads (see ClusterCore and election.ts).
 */
export class MembershipView {
  readonly #config: FailureDetectorConfig
  readonly #members = new Map<string, Member>()

  constructor (config: FailureDetectorConfig) {
    this.#config = config
  }

  get (id: string): Member | undefined {
    return this.#members.get(id)
  }

  all (): Member[] {
    return [...this.#members.values()]
  }

  /** Members that may still answer: alive, suspect or draining (not dead, not left). */
  live (): Member[] {
    return this.all().filter(m => !isGone(m.status))
  }

  deadList (): Incarnation[] {
    return this.all()
      .filter(m => m.status === 'dead')
      .sort((a, b) => b.statusSinceMs - a.statusSinceMs)
      .slice(0, MAX_DEAD_LISTED)
      .map(m => ({ id: m.id, incarnation: m.incarnation }))
  }

  /**
   * Records a heartbeat as a (new or renewed) live member. Admission is the
   * caller's decision. `relayed`: it came in a state sync, not from the
   * member's own heartbeat (see Member.relayed).
   */
  admit (hb: Heartbeat, nowMs: number, relayed = false): CoreEvent[] {
    const existing = this.#members.get(hb.id)
    const info: MemberInfo = {
      http: hb.http,
      capacity: hb.capacity,
      running: hb.running,
      queued: hb.queued,
      load: hb.load,
      types: hb.types,
      ...(hb.labels === undefined ? {} : { labels: hb.labels })
    }
    const events: CoreEvent[] = []
    const sameLife = existing !== undefined && existing.incarnation === hb.incarnation
    // A member that left stays gone for the rest of its incarnation (a restart is a new one).
    if (sameLife && existing.status === 'left') return events
    const status: MemberStatus = hb.leaving ?? 'alive'
    if (!sameLife) {
      events.push({ type: 'member-joined', id: hb.id, name: hb.name, incarnation: hb.incarnation })
      if (status !== 'alive') events.push({ type: 'member-status', id: hb.id, name: hb.name, from: 'alive', to: status, reason: LEAVING_REASON[status] })
    } else if (existing.status !== status) {
      events.push({ type: 'member-status', id: hb.id, name: hb.name, from: existing.status, to: status, reason: hb.leaving === undefined ? 'heartbeat' : LEAVING_REASON[hb.leaving] })
    }
    const statusUnchanged = sameLife && existing.status === status
    const intervalMs = Math.max(this.#config.heartbeatIntervalMs, hb.intervalMs ?? this.#config.heartbeatIntervalMs)
    this.#members.set(hb.id, {
      id: hb.id,
      name: hb.name,
      incarnation: hb.incarnation,
      seq: hb.seq,
      status,
      info,
      lastHeardMs: nowMs,
      statusSinceMs: statusUnchanged ? existing!.statusSinceMs : nowMs,
      confirmByMs: null,
      claim: { leader: hb.leader, term: hb.term },
      joining: hb.joining,
      intervalMs,
      // Once heard by its own heartbeat in this life, a member is watched as any other.
      ...(relayed && (!sameLife || existing.relayed === true) ? { relayed: true } : {})
    })
    return events
  }

  /**
   * Records a sender that was refused admission as dead, so that it appears
   * in this node's dead list and refutes by beginning a new incarnation.
   * Of a member already recorded in this incarnation it keeps the sequence
   * number, so that a heartbeat older than this one (gossip replays them
   * at a heal) is known to be old.
   */
  recordRefused (hb: Heartbeat, nowMs: number): CoreEvent[] {
    const known = this.#members.get(hb.id)
    if (known !== undefined) {
      if (known.incarnation === hb.incarnation) known.seq = Math.max(known.seq, hb.seq)
      return []
    }
    this.admit(hb, nowMs)
    const m = this.#members.get(hb.id)
    if (m === undefined) return []
    m.lastHeardMs = nowMs - this.#config.failureTimeoutMs
    return this.#setStatus(m, 'dead', nowMs, 'rejoined with an old incarnation; must refute')
  }

  /**
   * A connection to the member closed. That is a strong hint of a crash but
   * not proof (connections are pruned and re-dialled): the member becomes
   * suspect and is declared dead unless a heartbeat arrives in time.
   */
  hintDisconnected (id: string, nowMs: number): CoreEvent[] {
    const m = this.#members.get(id)
    if (m === undefined || isGone(m.status) || m.confirmByMs !== null) return []
    m.confirmByMs = nowMs + hintConfirmMs(this.#config)
    // A draining member stays draining (never a candidate) while the hint is confirmed.
    return m.status === 'draining' ? [] : this.#setStatus(m, 'suspect', nowMs, 'connection closed')
  }

  /**
   * The member answered a direct probe sent after a disconnect hint (its
   * connection was only pruned, or re-dialled): the hint is withdrawn.
   */
  probeAnswered (id: string, nowMs: number): CoreEvent[] {
    const m = this.#members.get(id)
    if (m === undefined || m.status === 'dead') return []
    m.lastHeardMs = Math.max(m.lastHeardMs, nowMs)
    m.confirmByMs = null
    return this.#setStatus(m, 'alive', nowMs, 'answered a probe')
  }

  /**
   * A direct probe sent after a disconnect hint failed (the connection was
   * refused, as after a crash): the hint is confirmed at once. A failed probe
   * without a pending hint proves nothing (the hint was already withdrawn).
   */
  probeFailed (id: string, nowMs: number): CoreEvent[] {
    const m = this.#members.get(id)
    if (m === undefined || m.status === 'dead' || m.confirmByMs === null) return []
    return this.#setStatus(m, 'dead', nowMs, 'connection closed and a probe failed')
  }

  /**
   * Applies the passage of time: suspect, dead and removal by silence.
   * `starting`: this node has not had a leader yet (members known only from
   * syncs get the sync bound, see #limitsOf).
   */
  tick (nowMs: number, starting = false): CoreEvent[] {
    const events: CoreEvent[] = []
    for (const m of this.#members.values()) {
      const { suspectMs, deadMs } = this.#limitsOf(m, starting)
      const silentMs = nowMs - m.lastHeardMs
      if (isGone(m.status)) {
        if (nowMs - m.statusSinceMs >= this.#config.deadRetentionMs) {
          this.#members.delete(m.id)
          events.push({ type: 'member-removed', id: m.id, name: m.name })
        }
        continue
      }
      if (silentMs >= deadMs) {
        events.push(...this.#setStatus(m, 'dead', nowMs, `silent for ${silentMs} ms`))
      } else if (m.confirmByMs !== null && nowMs >= m.confirmByMs) {
        events.push(...this.#setStatus(m, 'dead', nowMs, 'connection closed and no heartbeat since'))
      } else if (m.status === 'alive' && silentMs >= suspectMs) {
        events.push(...this.#setStatus(m, 'suspect', nowMs, `silent for ${silentMs} ms`))
      }
    }
    return events
  }

  /**
   * The silence limits of a member: by its announced interval, and, while
   * this node is starting (has had no leader), for one known only from
   * state syncs at least the sync bound (syncWaitMs): at a cold start on a
   * starved host the gossip mesh reaches a member seconds after its sync,
   * and declaring it dead meanwhile makes it refute with a new incarnation,
   * reorders the election and splits the cluster. A crash is still noticed
   * at once (its connection closes and a probe is refused). A node that
   * follows a leader judges every member by its interval.
   */
  #limitsOf (m: Member, starting: boolean): { suspectMs: number, deadMs: number } {
    const limits = silenceLimitsMs(this.#config, m.intervalMs)
    const syncWaitMs = this.#config.syncWaitMs
    if (!starting || m.relayed !== true || syncWaitMs === undefined || syncWaitMs <= limits.deadMs) return limits
    return { suspectMs: Math.floor(syncWaitMs / 2), deadMs: syncWaitMs }
  }

  /**
   * After this node itself stalled, forgive the silence it could not have
   * heard. A closed connection seen before the stall still stands: the member
   * gets one confirmation window from now to speak.
   */
  forgiveSilence (nowMs: number): void {
    for (const m of this.#members.values()) {
      if (isGone(m.status)) continue
      m.lastHeardMs = nowMs
      if (m.confirmByMs !== null) m.confirmByMs = nowMs + hintConfirmMs(this.#config)
    }
  }

  #setStatus (m: Member, to: MemberStatus, nowMs: number, reason: string): CoreEvent[] {
    if (m.status === to) return []
    const from = m.status
    m.status = to
    m.statusSinceMs = nowMs
    if (to !== 'suspect') m.confirmByMs = null
    return [{ type: 'member-status', id: m.id, name: m.name, from, to, reason }]
  }
}
