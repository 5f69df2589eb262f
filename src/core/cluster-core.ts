import { electLeader } from './election.ts'
import type { Candidate } from './election.ts'
import { ReturningClaims, accusedBy, deposedBy, leaderClaimed, mayAdmit, othersFollowAnUnheardLeader, preVoteQuorum, workingLeader } from './leadership.ts'
import type { Office } from './leadership.ts'
import { heartbeatDue, publishIntervalMs } from './heartbeat-pacing.ts'
import { CutOff } from './cut-off.ts'
import { JoinWindow } from './join-window.ts'
import { MembershipView, suspectAfterMs } from './membership.ts'
import { clusterSnapshot, memberHeartbeat } from './snapshot.ts'
import { StallWatch, stallReincarnates } from './stall.ts'
import type { ClusterCoreConfig, ClusterSnapshot, MemberSnapshot } from './cluster-core-types.ts'
import type { CoreEvent, Heartbeat, LeaderView, Leaving, MemberInfo, MemberStatus } from './types.ts'

export type { ClusterCoreConfig, ClusterSnapshot, MemberSnapshot } from './cluster-core-types.ts'

/**
 * The membership and leadership state machine of one node, in the style of
 * etcd's raft: it is stepped with inputs (a heartbeat, a disconnect hint, a
 * clock tick carrying `nowMs`) and returns what happened as events. It never
 * reads a clock, sets a timer or touches the network; src/runtime does.
 * Its verdicts live beside it: leadership.ts (who is in office, PreVote,
 * accusations, admission), cut-off.ts, join-window.ts, stall.ts.
 *
 * Rules, in one place:
 * - A working leader keeps office: while a live member claims leadership
 *   (names itself in its heartbeats), every node follows the best such claim
 *   (higher term, then older), also one older than that leader that comes
 *   back from a partition or a pause. Only when nobody live claims does the
 *   oldest live member lead (see election.ts): a cold start, a leader's
 *   death or departure. A member whose last heartbeat lists this node dead
 *   is passed over (it cannot hear this node; cut-off.ts).
 * - PreVote, in heartbeats: a node takes office (claims a new term) only
 *   when it is not joining, no alive member names a leader it has not heard
 *   (or declared dead while that member still hears it), and, with a
 *   quorum, `quorum` members (itself included) would vote for it: alive, and
 *   naming it or (not joining) no leader in their last heartbeat (with a
 *   quorum a follower publishes within half an interval when the leader it
 *   names changes). So a member back from a partition or a pause learns the
 *   leader before it could claim, a member cut off with a minority claims no
 *   term whose number would make the majority's leader claim above it, and a
 *   restart or resume that gives back a quorum gives it back within a few
 *   heartbeats.
 * - A node back from a partition (it saw no majority, or no quorum, within
 *   the last join window) that hears from a member it held dead or never
 *   knew while it follows no leader listens before it claims: gossip may
 *   first hand it heartbeats sent while it was cut off, whose votes are old
 *   (cut-off.ts). A node that kept its majority does not wait.
 * - A node in its join window does not claim leadership (one that has heard
 *   of members but not yet had its first state sync holds the window open,
 *   within a bound: join-window.ts), and while joining
 *   it re-numbers its incarnation after every established member it hears;
 *   members refuse a newcomer older than their leader until it does: a
 *   newcomer is always the youngest and never displaces a live leader.
 * - A node that becomes leader claims a term one above the highest it knows;
 *   terms only grow (heartbeats carry the sender's highest term and leader).
 * - A leader that hears a claim that beats its own (higher term, or equal
 *   term and an older leader) was deposed while it was away: it begins a new
 *   incarnation, which makes it the youngest member; an equal-term claim of
 *   a member it holds dead, only if it still stands a join window later (at
 *   a heal gossip replays old claims; see ReturningClaims).
 * - A member declared dead is not brought back by heartbeats of the same
 *   incarnation if that would let it overtake the current leader; dead
 *   members are listed in heartbeats, and a listed live node refutes by
 *   beginning a new incarnation (as in memberlist/SWIM) when the accuser
 *   would refuse it (it follows a leader not older than the accused). An
 *   accuser that follows nobody, or is joining, takes it back as it is.
 * - A node that notices it was itself stalled (a paused process, noticed by
 *   whichever input wakes it first) forgives the silence it could not hear,
 *   and if the stall exceeded the failure timeout it begins a new
 *   incarnation, since the others have declared it dead, and joins again
 *   (its join window restarts: it claims nothing until it has heard who
 *   leads now).
 * - A leaving node says so (as memberlist's Leave): while `draining` it is no
 *   leader candidate (a draining leader hands over at its next step, and the
 *   others elect without it as soon as they hear it), and once it announces
 *   `left` the others count it gone at once, without the failure timeout.
 */
export class ClusterCore {
  readonly #config: ClusterCoreConfig
  readonly #view: MembershipView
  readonly #id: string
  readonly #name: string
  /** When this node may lead: its join window, held open while it waits for a first state sync (join-window.ts). */
  readonly #join: JoinWindow
  #incarnation: number
  #seq = 0
  #term: number
  #leader: { id: string, term: number } | null = null
  /** The leader last announced in a leader-changed event. */
  #reported: LeaderView | null = null
  #info: MemberInfo
  /** When the core was last stepped (a tick, a heartbeat, a hint): a long gap is a stall of this node. */
  readonly #stall: StallWatch
  /** This node is leaving (see beginDrain and leave); null while it is an ordinary member. */
  #leaving: Leaving | null = null
  #lastPublishMs: number | null = null
  /** The interval this node's last heartbeat announced: the others' silence limits for it scale with it. */
  #announcedIntervalMs: number
  /** What the last published heartbeat said about membership (see #digest). */
  #publishedDigest = ''
  /** Superseding claims of members held dead, not yet believed. */
  readonly #returningClaims: ReturningClaims
  /** Whether this node was cut off lately: it listens before claiming, and who it passes over (cut-off.ts). */
  readonly #cutOff: CutOff

  constructor (self: { id: string, name: string, info: MemberInfo }, config: ClusterCoreConfig, nowMs: number, initialTerm = 0) {
    this.#config = config
    this.#view = new MembershipView(config)
    this.#id = self.id
    this.#name = self.name
    this.#info = self.info
    this.#join = new JoinWindow(config.joinWindowMs, config.syncWaitMs ?? config.joinWindowMs, nowMs)
    this.#incarnation = nowMs
    this.#stall = new StallWatch(config, nowMs)
    this.#term = initialTerm
    this.#returningClaims = new ReturningClaims(config.joinWindowMs)
    this.#cutOff = new CutOff(config)
    this.#announcedIntervalMs = config.heartbeatIntervalMs
  }

  get id (): string { return this.#id }
  get term (): number { return this.#term }
  isLeader (): boolean { return this.#leader?.id === this.#id }
  joining (nowMs: number): boolean { return this.#join.open(nowMs) }

  /**
   * The runtime has heard of another member (an mDNS answer, an open
   * connection) before its first state sync completed: the join window stays
   * open until the sync completes (at most syncWaitMs after the start), so a
   * node starved at start-up does not lead a cluster of one (join-window.ts).
   */
  onContact (nowMs: number, unanswered = 0): CoreEvent[] {
    const events = this.#noticeStall(nowMs)
    // At a cold start it also waits for every connected member's answer, within the same bound; once it has
    // had a leader (or led), neither changes anything (join-window.ts).
    this.#join.contact(nowMs)
    this.#join.unanswered(unanswered)
    return events
  }

  /** The member this node's election names but whose claim it has not heard yet (null: none, or heard). */
  expectedLeader (): string | null {
    return this.#leader !== null && !leaderClaimed(this.#view, this.#office()) ? this.#leader.id : null
  }

  /**
   * The leader as this node sees it and the term it claimed; null until the
   * elected member's own claim has been heard (a node reports no leader
   * rather than one that has not taken office).
   */
  leader (): LeaderView | null {
    if (this.#leader === null || !leaderClaimed(this.#view, this.#office())) return null
    const name = this.#leader.id === this.#id ? this.#name : (this.#view.get(this.#leader.id)?.name ?? this.#leader.id)
    return { id: this.#leader.id, name, term: this.#leader.term }
  }

  /** The status this node holds for member `id` (undefined: not known). */
  statusOf (id: string): MemberStatus | undefined {
    return id === this.#id ? 'alive' : this.#view.get(id)?.status
  }

  setLocalInfo (info: MemberInfo): void {
    this.#info = info
  }

  /** This node is draining or has left; null while it is an ordinary member. */
  get leaving (): Leaving | null { return this.#leaving }

  /**
   * This node begins to drain: from now on its heartbeats say `draining` and
   * it is no leader candidate, so a leader steps down here and now (the
   * others elect the next oldest member when they hear it).
   */
  beginDrain (nowMs: number): CoreEvent[] {
    if (this.#leaving !== null) return []
    this.#leaving = 'draining'
    return this.#recompute(nowMs)
  }

  /** This node has finished draining (or gave up): its heartbeats now say `left`. */
  leave (nowMs: number): CoreEvent[] {
    if (this.#leaving === 'left') return []
    this.#leaving = 'left'
    return this.#recompute(nowMs)
  }

  /** How often this node publishes now (see heartbeat-pacing.ts). */
  publishIntervalMs (nowMs: number): number {
    return publishIntervalMs(this.#config, this.#view.live().length, this.isLeader() || this.joining(nowMs))
  }

  /** True when a heartbeat is due (see heartbeat-pacing.ts). */
  heartbeatDue (nowMs: number): boolean {
    return heartbeatDue(this.#lastPublishMs, nowMs, this.publishIntervalMs(nowMs), this.#config.heartbeatIntervalMs, () => this.#digest(nowMs) !== this.#publishedDigest)
  }

  /** The heartbeat to publish now; each call advances the sequence number. */
  nextHeartbeat (nowMs: number): Heartbeat {
    this.#seq += 1
    this.#lastPublishMs = nowMs
    this.#publishedDigest = this.#digest(nowMs)
    const hb = this.#heartbeat(nowMs)
    this.#announcedIntervalMs = hb.intervalMs ?? this.#config.heartbeatIntervalMs
    return hb
  }

  #heartbeat (nowMs: number): Heartbeat {
    return {
      id: this.#id,
      name: this.#name,
      incarnation: this.#incarnation,
      seq: this.#seq,
      ...this.#info,
      leader: this.#leader?.id ?? null,
      term: this.#term,
      dead: this.#view.deadList(),
      joining: this.joining(nowMs),
      ...(this.#leaving === null ? {} : { leaving: this.#leaving }),
      intervalMs: this.publishIntervalMs(nowMs)
    }
  }

  #digest (nowMs: number): string {
    // With a quorum, the leader a follower names is its PreVote vote: a change goes out promptly.
    const follows = this.#config.quorum > 0 ? `follows ${this.#leader?.id ?? 'nobody'}` : 'follows'
    return `${this.isLeader() ? `leads in ${this.#term}` : follows}|${this.#incarnation}|${this.joining(nowMs) ? 'joining' : ''}|${this.#leaving ?? ''}`
  }

  /**
   * The state sync a joining node asks for (one round trip instead of
   * waiting to hear every member): this node's current heartbeat (its
   * sequence number not advanced) and, as heartbeats, the last word of every
   * member it holds alive. Suspect and dead members are left out: the joiner
   * learns of them from heartbeats, as every other member does.
   */
  syncView (nowMs: number): Heartbeat[] {
    const out: Heartbeat[] = [this.#heartbeat(nowMs)]
    for (const m of this.#view.all()) if (m.status === 'alive') out.push(memberHeartbeat(m))
    return out
  }

  /** Applies a state sync (see syncView): each entry as a heartbeat heard now, then one verdict. */
  onSync (view: readonly Heartbeat[], nowMs: number): CoreEvent[] {
    const events = [...this.#noticeStall(nowMs), ...view.flatMap(hb => this.#receive(hb, nowMs, false))]
    this.#join.synced()
    return [...events, ...this.#recompute(nowMs)]
  }

  /** `relayed`: not through gossip (the heartbeat a state-sync request carries): see Member.relayed. */
  onHeartbeat (hb: Heartbeat, nowMs: number, relayed = false): CoreEvent[] {
    const stall = this.#noticeStall(nowMs)
    const events = this.#receive(hb, nowMs, true, relayed)
    return stall.length === 0 ? events : [...stall, ...events]
  }

  #receive (hb: Heartbeat, nowMs: number, verdict: boolean, relayed = !verdict): CoreEvent[] {
    if (hb.id === this.#id) return []
    const events: CoreEvent[] = []
    const termBefore = this.#term

    const accused = accusedBy(hb, this.#view, this.#office(), termBefore)
    if (accused) events.push(this.#reincarnate(nowMs, `${hb.name} declared this node dead`))
    if (hb.term > this.#term) this.#term = hb.term

    if (!hb.joining && this.joining(nowMs) && hb.incarnation >= this.#incarnation) {
      // Order this newcomer after every established member, whatever the clocks say.
      this.#incarnation = hb.incarnation + 1
    }

    const known = this.#view.get(hb.id)
    if (known !== undefined) {
      if (hb.incarnation < known.incarnation) return events
      if (hb.incarnation === known.incarnation && hb.seq <= known.seq) return events
    }
    // A claim that supersedes ours deposes this leader (one of a member held dead only if it still stands).
    if (!accused && this.isLeader() && deposedBy(hb, this.#office())) {
      if (this.#returningClaims.stands(hb, known, this.#leader!.term, nowMs)) events.push(this.#reincarnate(nowMs, `${hb.name} leads with a superseding claim (term ${hb.term})`))
    } else {
      this.#returningClaims.withdrawn(hb.id)
    }
    const returning = known === undefined || (known.incarnation === hb.incarnation && known.status === 'dead')
    if (returning && !mayAdmit(hb, this.#view, this.#office(), termBefore)) {
      // Keep (or start) a dead record so that our dead list tells it to refute.
      events.push(...this.#view.recordRefused(hb, nowMs))
      return events
    }
    // Back from a partition, a member held dead or unknown makes this node listen before it claims (cut-off.ts).
    this.#cutOff.heard(hb, known, this.#leader === null, { id: this.#id, incarnation: this.#incarnation }, nowMs)
    // A sync's entries are relayed: watched with the sync's bound until heard through gossip.
    events.push(...this.#view.admit(hb, nowMs, relayed))
    if (verdict) events.push(...this.#recompute(nowMs))
    return events
  }

  /**
   * A connection to `id` closed: a hint, confirmed by silence (or by a
   * failed direct probe, see onProbeResult) before it is believed. The
   * runtime probes every member whose connection closed.
   */
  onPeerDisconnected (id: string, nowMs: number): CoreEvent[] {
    return [...this.#noticeStall(nowMs), ...this.#view.hintDisconnected(id, nowMs)]
  }

  /**
   * The outcome of a direct probe sent after a disconnect hint: answered
   * withdraws the hint; failed (the connection was refused, as after a
   * crash) confirms it at once. A probe that times out says nothing: the
   * hint's own deadline decides.
   */
  onProbeResult (id: string, answered: boolean, nowMs: number): CoreEvent[] {
    const events = [...this.#noticeStall(nowMs), ...(answered ? this.#view.probeAnswered(id, nowMs) : this.#view.probeFailed(id, nowMs))]
    if (events.length === 0) return events
    return [...events, ...this.#recompute(nowMs)]
  }

  onTick (nowMs: number): CoreEvent[] {
    const events = this.#noticeStall(nowMs)
    // A member it does not know is a founder while it starts, else one coming back.
    events.push(...this.#view.tick(nowMs, !this.#join.hadLeader))
    events.push(...this.#recompute(nowMs))
    return events
  }

  /**
   * Every step first checks whether this node was not running (SIGSTOP, a
   * VM pause) since the last one, whichever input wakes it first: the
   * silence of others is then ours, and after a stall the others took for
   * its death it begins a new incarnation and joins again.
   */
  #noticeStall (nowMs: number): CoreEvent[] {
    const stall = this.#stall.step(nowMs)
    if (stall === null) return []
    const events: CoreEvent[] = [{ type: 'stall-detected', gapMs: stall.gapMs }]
    this.#view.forgiveSilence(nowMs)
    const starting = !this.#join.hadLeader && this.#join.open(nowMs - stall.gapMs)
    if (stallReincarnates(this.#config, stall, nowMs, this.#lastPublishMs, this.#announcedIntervalMs, starting)) {
      events.push(this.#reincarnate(nowMs, `this node stalled for ${stall.gapMs} ms`))
      // Its view is as old as the stall: it joins again, claiming nothing until it has heard who leads now.
      if (stall.running) this.#join.restart(nowMs)
    }
    return events
  }

  snapshot (nowMs: number): ClusterSnapshot {
    const self: MemberSnapshot = { id: this.#id, name: this.#name, status: this.#leaving ?? 'alive', ...this.#info, lastSeenMs: 0, incarnation: this.#incarnation }
    return clusterSnapshot(self, this.#view.all(), this.leader(), this.#term, nowMs)
  }

  /**
   * This leader's term was granted to another leader (it learned so when a
   * member refused its gathering): it claims a term above every term it knows.
   */
  claimNewTerm (aboveTerm: number, nowMs: number): CoreEvent[] {
    if (!this.isLeader() || this.#leader === null) return []
    this.#term = Math.max(this.#term, this.#leader.term, aboveTerm) + 1
    this.#leader = { id: this.#id, term: this.#term }
    return this.#recompute(nowMs)
  }

  /**
   * Live members that may lead: not draining (this node included unless it
   * is leaving), and not one whose last heartbeat lists this node dead unless
   * this node was cut off lately (CutOff.passesOver).
   */
  #candidates (nowMs: number): Candidate[] {
    const out: Candidate[] = this.#view.live().filter(m => m.status !== 'draining' && !this.#cutOff.passesOver(m.id, nowMs)).map(m => ({ id: m.id, incarnation: m.incarnation }))
    if (this.#leaving === null) out.push({ id: this.#id, incarnation: this.#incarnation })
    return out
  }

  #recompute (nowMs: number): CoreEvent[] {
    const before = this.#reported
    const live = this.#view.live().length + 1
    this.#cutOff.sides(live, this.#view.all().filter(m => m.status !== 'left').length + 1, this.#config.quorum, nowMs)
    // A working leader keeps office; the oldest live member leads only when there is none.
    const own = this.isLeader() && this.#leader !== null && this.#leaving === null ? { term: this.#leader.term, leader: { id: this.#id, incarnation: this.#incarnation } } : null
    let id = workingLeader(this.#view, own) ?? electLeader(this.#candidates(nowMs))
    // A node still in its join window, or back from a partition, does not claim: it may not yet have heard a live leader.
    if (id === this.#id && (this.joining(nowMs) || (this.#cutOff.listening(nowMs) && this.#leader?.id !== this.#id))) id = null
    // Nor while others follow a leader we have not heard, or declared dead: our link may be the one that failed.
    if (id === this.#id && this.#leader?.id !== this.#id && othersFollowAnUnheardLeader(this.#view, this.#id, suspectAfterMs(this.#config))) id = null
    // Without a quorum in sight nobody leads here (a leader that loses it steps down).
    if (this.#config.quorum > 0 && live < this.#config.quorum) id = null
    // PreVote: taking office (a new term) also needs a quorum of members that have lost the old leader too.
    if (id === this.#id && this.#leader?.id !== this.#id && !preVoteQuorum(this.#view, this.#id, this.#config.quorum)) id = null
    if (id === null) {
      this.#leader = null
    } else if (id !== this.#id) {
      this.#leader = { id, term: this.#claimedTerm(id) }
    } else if (this.#leader?.id !== id || this.#leader.term < this.#term) {
      // Taking office, or someone claimed a term we had not seen without deposing us: claim above it.
      this.#term += 1
      this.#leader = { id, term: this.#term }
    }
    const after = this.leader()
    if (after !== null) this.#join.leaderKnown()
    if (!this.isLeader()) this.#returningClaims.clear()
    if (before?.id === after?.id && before?.term === after?.term) return []
    this.#reported = after
    return [{ type: 'leader-changed', leader: after, previous: before?.id ?? null }]
  }

  /** This node and the leader it follows (or is), for the verdicts of leadership.ts. */
  #office (): Office {
    return { self: { id: this.#id, incarnation: this.#incarnation }, leader: this.#leader }
  }

  #claimedTerm (id: string): number {
    const m = this.#view.get(id)
    return m !== undefined && m.claim.leader === id ? m.claim.term : this.#term
  }

  #reincarnate (nowMs: number, reason: string): CoreEvent {
    let highest = this.#incarnation
    for (const m of this.#view.all()) highest = Math.max(highest, m.incarnation)
    this.#incarnation = Math.max(nowMs, highest + 1)
    // A new incarnation is the youngest member: it holds no office until the next verdict.
    if (this.#leader?.id === this.#id) this.#leader = null
    this.#returningClaims.clear()
    this.#cutOff.reincarnated()
    return { type: 'reincarnated', incarnation: this.#incarnation, reason }
  }
}
