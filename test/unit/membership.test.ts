import { describe, expect, it } from 'vitest'
import { MembershipView, hintConfirmMs, suspectAfterMs } from '../../src/core/membership.ts'
import type { Heartbeat } from '../../src/core/types.ts'

const config = { heartbeatIntervalMs: 100, failureTimeoutMs: 1000, deadRetentionMs: 5000 }

function hb (id: string, seq: number, incarnation = 1): Heartbeat {
  return { id, name: id, incarnation, seq, http: 'http://x', capacity: 2, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: [], leader: null, term: 0, dead: [], joining: false }
}

describe('MembershipView failure detector', () => {
  it('marks a silent member suspect at half the timeout and dead at the timeout', () => {
    const view = new MembershipView(config)
    view.admit(hb('a', 1), 0)
    expect(view.tick(suspectAfterMs(config) - 1)).toEqual([])
    expect(view.tick(suspectAfterMs(config))[0]).toMatchObject({ type: 'member-status', to: 'suspect' })
    expect(view.get('a')?.status).toBe('suspect')
    expect(view.tick(config.failureTimeoutMs)[0]).toMatchObject({ type: 'member-status', to: 'dead' })
    expect(view.live()).toEqual([])
    expect(view.deadList()).toEqual([{ id: 'a', incarnation: 1 }])
  })

  it('a heartbeat clears suspicion', () => {
    const view = new MembershipView(config)
    view.admit(hb('a', 1), 0)
    view.tick(600)
    expect(view.admit(hb('a', 2), 650)[0]).toMatchObject({ type: 'member-status', from: 'suspect', to: 'alive' })
    expect(view.tick(1000)).toEqual([])
  })

  it('treats a closed connection as a hint: dead only if no heartbeat follows in time', () => {
    const view = new MembershipView(config)
    view.admit(hb('a', 1), 0)
    view.admit(hb('b', 1), 0)
    view.hintDisconnected('a', 10)
    view.hintDisconnected('b', 10)
    expect(view.get('a')?.status).toBe('suspect')
    view.admit(hb('b', 2), 100) // b's connection was only pruned; it keeps talking
    const events = view.tick(10 + hintConfirmMs(config))
    expect(events).toEqual([expect.objectContaining({ id: 'a', to: 'dead', reason: 'connection closed and no heartbeat since' })])
    expect(view.get('b')?.status).toBe('alive')
  })

  it('forgets a dead member after the retention period', () => {
    const view = new MembershipView(config)
    view.admit(hb('a', 1), 0)
    view.tick(1000)
    expect(view.tick(1000 + config.deadRetentionMs)).toEqual([expect.objectContaining({ type: 'member-removed', id: 'a' })])
    expect(view.all()).toEqual([])
  })
})
