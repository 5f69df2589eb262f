import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { NodeSet, agreedLeader, waitFor } from '../support/nodes.ts'
import { startRoguePeer } from '../support/rogue-peer.ts'

const CLI = resolve(import.meta.dirname, '../../src/cli.ts')

describe('bad input at start and on the wire', () => {
  const set = new NodeSet()
  afterEach(async () => { await set.stopAll() })

  it('a bad cluster.config.json stops start-up with a message naming the field and a non-zero exit', async () => {
    const dir = await set.tempDir()
    const cases: Array<[unknown, RegExp]> = [
      [{ cluster: 'x', heartbeatIntervalMS: 100 }, /unknown field "heartbeatIntervalMS"/],
      [{ httpPort: '7420' }, /field "httpPort" must be integer/],
      [{ mdns: 'yes' }, /field "mdns" must be boolean/]
    ]
    for (const [content, message] of cases) {
      const path = join(dir, 'cluster.config.json')
      writeFileSync(path, JSON.stringify(content))
      const run = spawnSync(process.execPath, [CLI, 'start', '--config', path, '--data-dir', join(dir, 'data')], { encoding: 'utf8', timeout: 20_000 })
      expect(run.status, run.stderr).toBe(2)
      expect(run.stderr).toMatch(message)
    }
  })

  it('rejects malformed heartbeats and heartbeats not signed by the member they name, scores their sender down until it is ignored, and keeps serving', async () => {
    const a1 = await set.start({ name: 'a1', cluster: 'guarded' })
    const a2 = await set.start({ name: 'a2', cluster: 'guarded' })
    await waitFor(async () => await agreedLeader([a1, a2], 2), 5_000, 'two nodes to agree')
    const rogue = await startRoguePeer('guarded')
    try {
      await waitFor(() => rogue.connectedPeers() >= 2, 10_000, 'the rogue peer to reach both nodes')
      const forged = {
        v: 1, id: a1.id, name: 'impostor', incarnation: 1, seq: 999, http: 'http://198.18.0.66:1', capacity: 64, running: 0, queued: 0,
        load: { cpu: 0, memory: 0 }, types: [], leader: null, term: 99, dead: [{ id: a2.id, incarnation: 0 }], joining: false
      }
      const own = { ...forged, id: 'not-a-peer-id', name: 'ghost' }
      const bytes = (o: object): Uint8Array => new TextEncoder().encode(JSON.stringify(o))
      for (let i = 0; i < 5; i++) {
        // a1's id, signed with the rogue's own key (as a stranger, or a member relaying a1's heartbeat, could sign it).
        await rogue.publish(rogue.signed(bytes({ ...forged, seq: 999 + i })))
        // a1's id, a signature of garbage.
        const garbled = rogue.signed(bytes({ ...forged, seq: 2_000 + i }))
        garbled.fill(7, 1, 65)
        await rogue.publish(garbled)
        await rogue.publish(rogue.signed(bytes({ ...own, seq: i })))
        // Unsigned (the old frame), and no heartbeat at all.
        await rogue.publish(bytes({ ...forged, seq: 3_000 + i }))
        await rogue.publish(new Uint8Array([0xde, 0xad, 0xbe, 0xef, i]))
      }
      await waitFor(() => /not signed by the member it names/.test(a2.output()) && /malformed heartbeat/.test(a2.output()), 5_000, 'a2 to log the rejections')
      for (const n of [a1, a2]) {
        const view = await n.cluster()
        expect(view.members.map(m => m.name).sort()).toEqual(['a1', 'a2'])
        expect(view.leader?.term).toBeLessThan(99)
      }
      expect(await agreedLeader([a1, a2], 2)).toBeDefined()

      // Scored down: the garbage put the rogue below gossipsub's graylist threshold, so even a valid
      // heartbeat of its own is now ignored; the same heartbeat from a peer with a clean record is heard
      // (without a cluster key anyone on the LAN can join: see docs/security.md). The clean
      // peer relays nothing of the rogue's, so the rogue's heartbeat can only reach the nodes directly.
      // Gossipsub recomputes a score at most once per its heartbeat (1 s): the penalty applies from then on.
      // A stated bound, not a condition: no node exposes a peer's score. The rejections are logged (waited for
      // above) when the garbage is validated; one gossipsub heartbeat (1 s) later the score is recomputed, so 1.5 s
      // after them the rogue is graylisted.
      await new Promise(r => setTimeout(r, 1_500))
      const clean = await startRoguePeer('guarded', { relay: false })
      try {
        await waitFor(() => clean.connectedPeers() >= 2, 10_000, 'a second peer to reach both nodes')
        const valid = (id: string, name: string, seq: number): Uint8Array => bytes({ ...forged, id, name, seq, incarnation: Date.now(), term: 0, dead: [], http: 'http://198.18.0.67:1' })
        await waitFor(async () => {
          await rogue.publish(rogue.signed(valid(rogue.id, 'graylisted', Date.now())))
          await clean.publish(clean.signed(valid(clean.id, 'newcomer', Date.now())))
          return (await a1.cluster()).members.some(m => m.name === 'newcomer')
        }, 10_000, 'the clean peer\'s heartbeat to be heard', 200)
        for (const n of [a1, a2]) expect((await n.cluster()).members.map(m => m.name)).not.toContain('graylisted')
      } finally {
        await clean.stop()
      }
    } finally {
      await rogue.stop()
    }
  })
})
