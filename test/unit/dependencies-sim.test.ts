import { describe, expect, it } from 'vitest'
import { runTaskSim } from '../sim/task-sim.ts'

/** Seeds per CI run with the dependency workload on (`TASKMESH_DEPS_SIM_SEEDS` runs more). */
const SEEDS = Number(process.env.TASKMESH_DEPS_SIM_SEEDS ?? 40)

describe('task dependencies under seeded faults (real runtimes, simulated network and clock)', () => {
  it(`keeps every invariant over ${SEEDS} seeds with chains and small graphs in the workload`, async () => {
    let withParents = 0
    for (let seed = 1; seed <= SEEDS; seed++) {
      const r = await runTaskSim({ seed, dependencies: true })
      const summary = r.violations.slice(0, 5).map(v => `${v.kind}: ${v.detail}`).join('\n')
      expect(r.violations, `seed ${seed} with dependencies\n${summary}\n${r.log.slice(-30).join('\n')}`).toEqual([])
      expect(r.settledAfterMs, `seed ${seed}: every task ended`).not.toBeNull()
      withParents += r.withParents
    }
    // The workload did have tasks with parents (about a tenth of the tasks).
    expect(withParents).toBeGreaterThan(SEEDS * 10)
  }, 600_000)
})
