/** When a node publishes its heartbeat, pure (ClusterCore keeps the state it needs). */

/**
 * How often a node publishes now: every heartbeatIntervalMs as leader, while
 * joining (`everyInterval`), or in a small cluster; as a follower of a large
 * one, so often that all followers together publish
 * followerHeartbeatsPerSecond.
 */
export function publishIntervalMs (config: { heartbeatIntervalMs: number, followerHeartbeatsPerSecond?: number }, liveMembers: number, everyInterval: boolean): number {
  const base = config.heartbeatIntervalMs
  const budget = config.followerHeartbeatsPerSecond ?? 0
  if (budget <= 0 || everyInterval) return base
  return Math.max(base, Math.ceil(liveMembers * 1000 / budget))
}

/**
 * True when a heartbeat is due: its interval has passed, or what this node
 * says about itself changed since the last one (it took or left office, a
 * new incarnation, the end of its join window) and half an interval has
 * passed. A follower's changed view of others (a new leader, a member it
 * declared dead) waits for its next heartbeat: the new leader's own claim
 * spreads the change, and an accused live member hears the accusation from
 * the first of the many members that make it; so an event anywhere does
 * not make every member publish at once.
 */
export function heartbeatDue (lastPublishMs: number | null, nowMs: number, intervalMs: number, heartbeatIntervalMs: number, selfChanged: () => boolean): boolean {
  if (lastPublishMs === null) return true
  const sinceMs = nowMs - lastPublishMs
  if (sinceMs >= intervalMs) return true
  return sinceMs >= heartbeatIntervalMs / 2 && selfChanged()
}
