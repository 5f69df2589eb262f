/**
 * The transport contract (test/contract/transport-contract.ts) on the
 * simulator's in-memory transport, with its injected faults (delays, drops,
 * resets) off and its simulated time driven by the real clock, so that the
 * same assertions on timeouts hold.
 */
import { TaskSim } from '../sim/task-sim.ts'
import { transportContract } from '../contract/transport-contract.ts'

transportContract('simulator (test/sim/task-sim.ts)', async n => {
  const sim = new TaskSim({ seed: 1, nodes: n, network: 'perfect' })
  const transports = sim.nodes.map(node => sim.attachTransport(node))
  // Simulated time follows real time: every event comes due when its real moment passes.
  const realStartMs = Date.now()
  const simStartMs = sim.now
  let running = true
  const pump = (async () => {
    while (running) {
      await sim.runUntil(simStartMs + (Date.now() - realStartMs))
      await new Promise(resolve => setTimeout(resolve, 1))
    }
  })()
  return {
    transports,
    unknownId: 'node-never-started',
    cleanup: async () => {
      running = false
      await pump
      for (const node of sim.nodes) node.store.close()
    }
  }
})
