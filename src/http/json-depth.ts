/**
 * Nesting depth of a parsed JSON value, measured without recursion (a value
 * nested 100,000 deep must not overflow the stack while being measured).
 */

/** Deepest nesting the API accepts in a request body (the body itself is level 1). */
export const MAX_JSON_DEPTH = 100

/** True when `value` nests arrays or objects deeper than `max` levels. */
export function deeperThan (value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (v === null || typeof v !== 'object') continue
    if (depth > max) return true
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1])
    }
  }
  return false
}
