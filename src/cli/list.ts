/** `taskmesh list`: every task in the cluster (GET /v1/tasks?scope=cluster), a page at a time or all of them. */
import type { TaskStatus } from '../core/tasks.ts'
import { clientFor } from './common.ts'

export interface ListOptions { node: string, status?: TaskStatus, type?: string, limit: number, all?: boolean, json?: boolean }

/** Prints the tasks, one line each (or one JSON object per line), following the cursor with --all; a note on stderr when a page was partial or more remain. */
export async function listTasks (opts: ListOptions, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<void> {
  const client = clientFor(opts.node)
  let cursor: string | undefined
  let partial = false
  for (;;) {
    const page = await client.listCluster({ status: opts.status, type: opts.type, limit: opts.limit, cursor })
    partial ||= page.partial
    for (const t of page.tasks) {
      out.write(opts.json === true ? JSON.stringify(t) + '\n' : `${t.id}  ${t.status.padEnd(9)}  ${t.type.padEnd(12)}  ${new Date(t.createdAt).toISOString()}  attempts ${t.attempts}\n`)
    }
    if (page.cursor === null) break
    if (opts.all !== true) {
      err.write(`more tasks: add --all to list every one (the API's next page: GET /v1/tasks?scope=cluster&cursor=${page.cursor})\n`)
      break
    }
    cursor = page.cursor
  }
  if (partial) err.write('note: a member did not answer; tasks held only there may be missing\n')
}
