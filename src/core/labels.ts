/**
 * Node labels and task requirements, pure. A node carries labels from its
 * config (`{"gpu": "a100", "zone": "rack2"}`) and gossips them with its
 * heartbeats; a task may require labels (`{"gpu": "*"}`): the leader places
 * it only on a member that has every required key, with any value for `*`
 * and exactly the given value otherwise.
 */

export type Labels = Readonly<Record<string, string>>

/** The value of a requirement that any value of the key satisfies. */
export const ANY_VALUE = '*'

/** True when `labels` meet every key of `require` (no requirement: every member does). */
export function matchesLabels (labels: Labels | undefined, require: Labels | undefined): boolean {
  if (require === undefined) return true
  for (const [key, want] of Object.entries(require)) {
    const have = labels?.[key]
    if (have === undefined || (want !== ANY_VALUE && have !== want)) return false
  }
  return true
}

/** A requirement as users write it, for messages: `gpu=*, zone=rack2`. */
export function describeRequirement (require: Labels): string {
  return Object.entries(require).map(([k, v]) => `${k}=${v}`).join(', ')
}

/** A member as far as "who could run this task" goes. */
export interface LabelledMember {
  types: readonly string[]
  labels?: Labels
}

/** True when some member runs `type` and meets `require`. */
export function someMemberCanRun (members: readonly LabelledMember[], type: string, require: Labels | undefined): boolean {
  return members.some(m => m.types.includes(type) && matchesLabels(m.labels, require))
}
