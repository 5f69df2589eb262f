import { describe, expect, it } from 'vitest'
import { formatMemberTable } from '../../src/cli/table.ts'
import type { ClusterView } from '../../src/cli/table.ts'

const member = (name: string, status: string): ClusterView['members'][number] => ({
  id: `12D3KooW${name.padStart(8, 'x')}`, name, http: `http://127.0.0.1:7${name.length}`, status, capacity: 2, running: 1, queued: 7, load: { cpu: 0.42, memory: 0.06 }, lastSeenMs: 50
})

describe('the member table', () => {
  it('shows a dead member\'s load and task counts as "-", not its last heartbeat\'s figures, and leaves it out of the totals', () => {
    const view: ClusterView = { self: { id: member('a1', 'alive').id, name: 'a1' }, leader: { id: member('a1', 'alive').id, name: 'a1', term: 2 }, members: [member('a1', 'alive'), member('dead1', 'dead')] }
    const lines = formatMemberTable(view, false).split('\n')
    expect(lines[0]).toBe('leader: a1 (term 2)')
    expect(lines[2]).toMatch(/^\* +a1 \(self\) +…\S+ +alive +2 +1 +7 +42% +6% +- +http/)
    expect(lines[3]).toMatch(/^ +dead1 +…\S+ +dead +2 +- +- +- +- +50 ms +http/)
    expect(lines[4]).toBe('members: 1 alive, 0 suspect, 1 dead; tasks: 1 running, 7 queued; slots: 1 of 2 free')
  })

  it('shows a draining member\'s live figures, a member that left like a dead one, and counts both in the totals', () => {
    const view: ClusterView = { self: { id: member('a1', 'alive').id, name: 'a1' }, leader: null, members: [member('a1', 'alive'), member('dr1', 'draining'), member('gone1', 'left')] }
    const lines = formatMemberTable(view, false).split('\n')
    expect(lines[3]).toMatch(/^ +dr1 +…\S+ +draining +2 +1 +7 +42% +6% +50 ms +http/)
    expect(lines[4]).toMatch(/^ +gone1 +…\S+ +left +2 +- +- +- +- +50 ms +http/)
    expect(lines[5]).toBe('members: 1 alive, 0 suspect, 1 draining, 1 left, 0 dead; tasks: 2 running, 14 queued; slots: 2 of 4 free')
  })
})
