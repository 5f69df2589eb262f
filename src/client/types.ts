/**
 * The client's types, taken from the schemas the server validates and
 * serializes with (src/http/schemas.ts), so the two cannot drift apart.
 */
import type { Static } from '@sinclair/typebox'
import type {
  BatchItemBody, BatchReply, BatchWaitedReply, BulkWaitReply, CancelReply, ClusterEventData, ClusterReply, DrainReply, HealthReply, HelloEventData, LeaderEventData, MemberEventData,
  MemberReply, RetryReply, TypeLimitReply, TypesReply, SampleData, SubmitBody, SubmittedReply, TaskEventData, TaskReply, TaskStatusSchema
} from '../http/schemas.ts'
import type { ScheduleBody, ScheduleChangeReply, ScheduleDeletedReply, ScheduleReply } from '../http/schedule-schemas.ts'

/** A task to submit: `type` and `payload`, and optionally priority, per-attempt timeout, attempts, idempotency key. */
export type TaskSubmission = Static<typeof SubmitBody>
/** One task of a batch: a TaskSubmission, and a `ref` the batch's other tasks' dependsOn may name it by. */
export type BatchTaskSubmission = Static<typeof BatchItemBody>
/** waiting | scheduled | queued | assigned | running | retrying | succeeded | failed | cancelled */
export type TaskStatus = Static<typeof TaskStatusSchema>
/** A task record (GET /v1/tasks/:id): status, attempts, worker, progress, result, error, times. */
export type Task = Static<typeof TaskReply>
export type Submitted = Static<typeof SubmittedReply>
export type BatchSubmitted = Static<typeof BatchReply>
export type Cancelled = Static<typeof CancelReply>
/** POST /v1/tasks/:id/retry: queued again (scheduled: a delayed task before its runAt), attempts used, the new maxAttempts. */
export type Retried = Static<typeof RetryReply>
/** GET /v1/types: a task type's cluster-wide limit and its queued, running and limited counts. */
export type TypeRow = Static<typeof TypesReply>['types'][number]
/** PUT /v1/types/:type: the limit set, and how many members stored it. */
export type TypeLimitSet = Static<typeof TypeLimitReply>
/** PUT /v1/schedules/:name: a recurring schedule (exactly one of cron, with an optional timezone, and everyMs) and the task it fires. */
export type ScheduleSpec = Static<typeof ScheduleBody>
/** GET /v1/schedules/:name: a schedule with its latest and next tick. */
export type Schedule = Static<typeof ScheduleReply>
/** A schedule change (PUT, pause, resume): the schedule, and how many members stored it. */
export type ScheduleChanged = Static<typeof ScheduleChangeReply>
export type ScheduleDeleted = Static<typeof ScheduleDeletedReply>
/** POST /v1/tasks/batch?wait=MS: every id, the tasks that ended, the ids still pending. */
export type BatchWaited = Static<typeof BatchWaitedReply>
/** POST /v1/tasks/wait: the asked tasks that ended, the ids still pending, the ids no live node knows. */
export type BulkWaited = Static<typeof BulkWaitReply>
/** GET /v1/cluster: this node, the leader, the members. */
export type Cluster = Static<typeof ClusterReply>
export type Member = Static<typeof MemberReply>
export type Health = Static<typeof HealthReply>
/** POST /v1/drain: the node that drains, and how long its running attempts get. */
export type Draining = Static<typeof DrainReply>
export type Sample = Static<typeof SampleData>

/** One event of GET /v1/events, by kind. */
export type TaskmeshEvent =
  | { event: 'hello', id: string | null, node: string, data: Static<typeof HelloEventData> }
  | { event: 'member', id: string | null, node: string, data: Static<typeof MemberEventData> }
  | { event: 'leader', id: string | null, node: string, data: Static<typeof LeaderEventData> }
  | { event: 'task', id: string | null, node: string, data: Static<typeof TaskEventData> }
  | { event: 'cluster', id: string | null, node: string, data: Static<typeof ClusterEventData> }

export type EventKind = Exclude<TaskmeshEvent['event'], 'hello'>

/** A task that ended. */
export function isTerminalStatus (s: TaskStatus): s is 'succeeded' | 'failed' | 'cancelled' {
  return s === 'succeeded' || s === 'failed' || s === 'cancelled'
}
