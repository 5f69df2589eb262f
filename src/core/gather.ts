/**
 * The tally of a new leader's gathering. Its inventory request to every
 * reachable member is also the vote (see grants.ts): each member grants the
 * term to one leader only. Pure: the caller sends the requests and acts on
 * the verdict.
 */
import type { Inventory } from './scheduler.ts'

/** One member's answer to the inventory request of a term. */
export type GatherAnswer =
  | ({ kind: 'granted' } & Inventory)
  /** The member granted this term (or a newer one) to another leader. */
  | { kind: 'refused', from: string }
  /** No answer, or an answer that is neither (a timeout, a member still starting). */
  | { kind: 'silent', from: string }

export type GatherVerdict =
  /** Another leader holds this term: claim a newer one, dispatch nothing. */
  | { kind: 'claim-newer-term' }
  /** Too few grants to be sure no other leader holds the term: ask again after a heartbeat. */
  | { kind: 'ask-again', granted: number, quorum: number }
  /** Granted by enough members: take over from these inventories and dispatch. */
  | { kind: 'take-over', inventories: Inventory[] }

/**
 * One refusal means the term is someone else's. Otherwise the leader needs
 * `quorum` grants (itself included; 0: no quorum rule, any grants will do).
 */
export function tallyGather (answers: readonly GatherAnswer[], quorum: number): GatherVerdict {
  if (answers.some(a => a.kind === 'refused')) return { kind: 'claim-newer-term' }
  const inventories: Inventory[] = []
  for (const a of answers) if (a.kind === 'granted') inventories.push({ from: a.from, running: a.running, held: a.held })
  if (quorum > 0 && inventories.length < quorum) return { kind: 'ask-again', granted: inventories.length, quorum }
  return { kind: 'take-over', inventories }
}
