/**
 * The timings a node derives from its settings (heartbeatIntervalMs,
 * failureTimeoutMs, quorum), in one place so they cannot disagree.
 */
import type { Config } from './config.ts'

/**
 * How often a node steps its failure detector and election: twice per
 * heartbeat interval (so a failure is noticed close to its deadline), but at
 * least every 100 ms and at most every 10 ms.
 */
export function tickIntervalMs (heartbeatIntervalMs: number): number {
  return Math.max(10, Math.min(100, Math.floor(heartbeatIntervalMs / 2)))
}

/** See coreTimings. */
export const FOLLOWER_HEARTBEATS_PER_SECOND = 8
/** See coreTimings. */
export const SYNC_WAIT_MS = 10_000

/**
 * Timings derived from the two documented settings, so they cannot disagree:
 * - joinWindowMs = failureTimeoutMs: a starting node listens that long before
 *   it may lead; a live leader is heard well within it.
 * - deadRetentionMs = max(30 s, 20 x failureTimeoutMs): how long a dead member
 *   stays listed, and named in heartbeats so that it can refute if it lives.
 * - syncWaitMs = max(10 s, joinWindowMs): a starting node that has heard of
 *   members (mDNS, a connection) keeps its join window open until its first
 *   state sync, at most this long after its start (src/core/join-window.ts):
 *   25 processes starting at once on 2 cores starve each other for seconds.
 * - followerHeartbeatsPerSecond = 8: the heartbeats all followers publish
 *   together each second, at most (the leader's come on top, every
 *   heartbeatIntervalMs). Up to 3 members every member publishes every
 *   heartbeatIntervalMs; at 10 a follower publishes every 1.125 s, at 25
 *   every 3 s, at 1,000 every 125 s, so what each node receives stays flat
 *   (about 12 a second) however large the cluster. Receiving and relaying
 *   heartbeats is most of an idle node's CPU (16 a second, as before issue
 *   15's h15beat pass, cost a 10-node member about 0.8 points of a core
 *   more: bench/README.md). A follower's silence timeout scales with its
 *   interval (18 s at 25 members, 9 s with 16 a second), so a paused or cut
 *   off follower is declared dead later; a crash is still noticed at once
 *   (its connections close and a direct probe is refused), and the leader's
 *   own limit stays failureTimeoutMs.
 */
export function coreTimings (c: Pick<Config, 'heartbeatIntervalMs' | 'failureTimeoutMs' | 'quorum'>): { heartbeatIntervalMs: number, failureTimeoutMs: number, joinWindowMs: number, syncWaitMs: number, deadRetentionMs: number, quorum: number, followerHeartbeatsPerSecond: number } {
  return {
    followerHeartbeatsPerSecond: FOLLOWER_HEARTBEATS_PER_SECOND,
    quorum: c.quorum,
    heartbeatIntervalMs: c.heartbeatIntervalMs,
    failureTimeoutMs: c.failureTimeoutMs,
    joinWindowMs: c.failureTimeoutMs,
    syncWaitMs: Math.max(SYNC_WAIT_MS, c.failureTimeoutMs),
    deadRetentionMs: Math.max(30_000, 20 * c.failureTimeoutMs)
  }
}
