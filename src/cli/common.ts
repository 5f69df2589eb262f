/** What every CLI command shares: its error type and the client it talks to nodes with. */
import { TaskmeshClient } from '../client/index.ts'

/** A mistake the user can fix (bad arguments, unreadable file): printed without a stack, exit 2. */
export class CliError extends Error {
  override name = 'CliError'
}

/** The client for `--node`, with `TASKMESH_TOKEN` as the bearer token when set (nodes whose API is not on loopback need it). */
export function clientFor (node: string): TaskmeshClient {
  return new TaskmeshClient({ nodes: node, token: process.env.TASKMESH_TOKEN })
}
