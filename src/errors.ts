/**
 * Named errors that cross the HTTP boundary; src/http maps each to its
 * status code and the JSON error shape `{error: {code, message}}`.
 */
export class TaskmeshError extends Error {
  readonly status: number
  readonly code: string
  /** Seconds, for a Retry-After header. */
  readonly retryAfterS: number | undefined

  constructor (status: number, code: string, message: string, retryAfterS?: number) {
    super(message)
    this.status = status
    this.code = code
    this.retryAfterS = retryAfterS
  }
}

/** A request that passed the schema but asks for something that cannot be: 400 INVALID_REQUEST, as a schema failure. */
export class InvalidRequestError extends TaskmeshError {
  override name = 'InvalidRequestError'
  constructor (message: string) { super(400, 'INVALID_REQUEST', message) }
}

export class TaskNotFoundError extends TaskmeshError {
  override name = 'TaskNotFoundError'
  constructor (id: string) { super(404, 'TASK_NOT_FOUND', `no task with id "${id}" on any live node`) }
}

export class TaskExpiredError extends TaskmeshError {
  override name = 'TaskExpiredError'
  constructor (id: string) { super(404, 'TASK_EXPIRED', `task "${id}" ended and its record has expired (retainFinishedMs, retainFinishedCount or the task's retainMs) or was purged`) }
}

/** A submit's dependsOn that cannot be: a cycle, a ref used twice, a task depending on itself, too many parents. */
export class InvalidDependenciesError extends TaskmeshError {
  override name = 'InvalidDependenciesError'
  constructor (message: string) { super(422, 'INVALID_DEPENDENCIES', message) }
}

/** A submit's dependsOn names a task that exists on no live node (nor a ref of its batch). */
export class UnknownParentError extends TaskmeshError {
  override name = 'UnknownParentError'
  constructor (where: string, id: string, expired: boolean) {
    super(422, 'UNKNOWN_PARENT', expired
      ? `${where}dependsOn names task "${id}", whose record has expired`
      : `${where}dependsOn names "${id}", which is no task on any live node${where === '' ? '' : ' and no ref of this batch'}`)
  }
}

export class UnknownTaskTypeError extends TaskmeshError {
  override name = 'UnknownTaskTypeError'
  constructor (type: string, known: string[]) { super(422, 'UNKNOWN_TASK_TYPE', `task type "${type}" is not run by any live node; known types: ${known.join(', ')}`) }
}

/** A task whose required labels no live member that runs its type has. */
export class RequirementUnmetError extends TaskmeshError {
  override name = 'RequirementUnmetError'
  constructor (field: string, type: string, requirement: string) { super(422, 'REQUIREMENT_UNMET', `${field}: no live member that runs task type "${type}" has the labels ${requirement}; see GET /v1/cluster for each member's labels`) }
}

export class PayloadTooLargeError extends TaskmeshError {
  override name = 'PayloadTooLargeError'
  constructor (field: string, bytes: number, limit: number) { super(413, 'PAYLOAD_TOO_LARGE', `${field} is ${bytes} bytes of JSON; the limit (maxPayloadBytes) is ${limit}`) }
}

export class QueueFullError extends TaskmeshError {
  override name = 'QueueFullError'
  constructor (limit: number, scope: 'cluster' | 'node' = 'cluster') {
    super(429, 'QUEUE_FULL', scope === 'cluster'
      ? `the cluster holds its maximum of ${limit} waiting tasks (maxQueuedTasks); retry later`
      : `this node holds its maximum of ${limit} accepted tasks waiting for a leader (maxQueuedTasksPerNode); retry later`, 1)
  }
}

export class TaskFinishedError extends TaskmeshError {
  override name = 'TaskFinishedError'
  constructor (id: string, status: string) { super(409, 'TASK_FINISHED', `task "${id}" already ended as ${status}`) }
}

/** A retry of a task that has not ended as failed or cancelled. */
export class TaskNotRetryableError extends TaskmeshError {
  override name = 'TaskNotRetryableError'
  constructor (id: string, status: string, message?: string) { super(409, 'TASK_NOT_RETRYABLE', message ?? `task "${id}" is ${status}; only a failed or cancelled task can be retried`) }
}

export class ScheduleNotFoundError extends TaskmeshError {
  override name = 'ScheduleNotFoundError'
  constructor (name: string) { super(404, 'SCHEDULE_NOT_FOUND', `no schedule named "${name}"`) }
}

export class UnavailableError extends TaskmeshError {
  override name = 'UnavailableError'
  constructor (message: string) { super(503, 'UNAVAILABLE', message, 1) }
}

/** The node is draining (it stops soon): it takes no new tasks; another node does. */
export class DrainingError extends TaskmeshError {
  override name = 'DrainingError'
  constructor () { super(503, 'DRAINING', 'this node is draining before it stops and takes no new tasks; submit to another node', 1) }
}

export class TooManyWaitersError extends TaskmeshError {
  override name = 'TooManyWaitersError'
  constructor (limit: number) { super(429, 'TOO_MANY_LONG_POLLS', `${limit} requests are already waiting on this node (maxLongPolls); retry later, or without ?wait=`, 1) }
}

export class TooManyStreamsError extends TaskmeshError {
  override name = 'TooManyStreamsError'
  constructor (limit: number) { super(503, 'TOO_MANY_STREAMS', `this node already serves its maximum of ${limit} event streams (maxEventStreams); retry later or use another node`, 5) }
}
