/**
 * The tasks table's schema as steps: TaskStore applies those a store has not
 * had yet (PRAGMA user_version counts the steps applied), each with its
 * version number in one transaction.
 */
import { ENDED_INDEX_SPLIT, RETENTION_INDEXES, RETENTION_MIGRATIONS } from './record-retention.ts'
import { ORDER_INDEX, UNFINISHED_OF_STATUS } from './seq-order.ts'

/** Records by status and by last change (listings, the ended-since feed, the unfinished at start); tasks_seq is dropped again by the last step. */
const SEQ_INDEXES = ['CREATE INDEX tasks_status_seq ON tasks (status, seq)', 'CREATE INDEX tasks_seq ON tasks (seq)']

/** The tasks table's columns, in their order (the first CREATE TABLE and the columns added after it). */
const TASK_COLUMNS: ReadonlyArray<readonly [string, string]> = [
  ['id', 'TEXT PRIMARY KEY'], ['type', 'TEXT NOT NULL'], ['payload', 'TEXT NOT NULL'], ['priority', 'INTEGER NOT NULL'],
  ['timeout_ms', 'INTEGER NOT NULL'], ['max_attempts', 'INTEGER NOT NULL'], ['idempotency_key', 'TEXT'],
  ['created_at', 'INTEGER NOT NULL'], ['origin', 'TEXT NOT NULL'], ['replicas', 'TEXT NOT NULL'], ['status', 'TEXT NOT NULL'],
  ['attempts', 'INTEGER NOT NULL'], ['worker', 'TEXT'], ['progress', 'TEXT'], ['result', 'TEXT'], ['error', 'TEXT'],
  ['started_at', 'INTEGER'], ['finished_at', 'INTEGER'], ['seq', 'INTEGER NOT NULL'], ['retain_ms', 'INTEGER'], ['copies', 'INTEGER'],
  ['run_at', 'INTEGER'], ['retries', 'INTEGER'], ['schedule', 'TEXT'], ['options', 'TEXT'], ['depends_on', 'TEXT'], ['parents', 'TEXT']
]

/** Schema steps, in order. */
export const MIGRATIONS = [
  `CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    priority INTEGER NOT NULL,
    timeout_ms INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    idempotency_key TEXT UNIQUE,
    created_at INTEGER NOT NULL,
    origin TEXT NOT NULL,
    replicas TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    worker TEXT,
    progress TEXT,
    result TEXT,
    error TEXT,
    started_at INTEGER,
    finished_at INTEGER,
    seq INTEGER NOT NULL
  )`,
  ...SEQ_INDEXES,
  ...RETENTION_MIGRATIONS,
  // Delayed tasks (their spec's runAt), and user retries (the generation; a retry may change max_attempts).
  'ALTER TABLE tasks ADD COLUMN run_at INTEGER',
  'ALTER TABLE tasks ADD COLUMN retries INTEGER',
  // A task fired by a recurring schedule: its stamp (JSON).
  'ALTER TABLE tasks ADD COLUMN schedule TEXT',
  // Optional spec fields no query looks into, as one JSON object (see OPTION_FIELDS): required labels, completion callback.
  'ALTER TABLE tasks ADD COLUMN options TEXT',
  // A task's parents (dependsOn, a JSON array of ids), and their results once it was released (a JSON object by id).
  'ALTER TABLE tasks ADD COLUMN depends_on TEXT',
  'ALTER TABLE tasks ADD COLUMN parents TEXT',
  // Idempotency keys unique through a partial index, so the many tasks without one add no index entry
  // (the column's UNIQUE put every NULL in an index: one more page written per task stored). SQLite
  // cannot drop a column constraint, so the table is rebuilt (once, in one transaction, by TaskStore#migrate).
  `CREATE TABLE tasks_rebuilt (${TASK_COLUMNS.map(([name, type]) => `${name} ${type}`).join(', ')});
   INSERT INTO tasks_rebuilt (${TASK_COLUMNS.map(([name]) => name).join(', ')}) SELECT ${TASK_COLUMNS.map(([name]) => name).join(', ')} FROM tasks;
   DROP TABLE tasks;
   ALTER TABLE tasks_rebuilt RENAME TO tasks;
   CREATE UNIQUE INDEX tasks_idempotency_key ON tasks (idempotency_key) WHERE idempotency_key IS NOT NULL;
   ${[...SEQ_INDEXES, ...RETENTION_INDEXES].join(';\n   ')};`,
  // No index on seq alone: each insert and each ending wrote one more b-tree page for it. The reads in
  // change order take each status's share from tasks_status_seq and merge them (src/store/seq-order.ts).
  'DROP INDEX IF EXISTS tasks_seq',
  // One ended index per ending, not two (see record-retention.ts).
  ENDED_INDEX_SPLIT,
  // Records in change order with the ended ones first (see ORDER_INDEX in seq-order.ts): an ending moves its
  // entry within one leaf of this index instead of from the unfinished statuses' leaf to the ended ones'.
  // `unfinished` (1 or 0) is written with every status.
  `ALTER TABLE tasks ADD COLUMN unfinished INTEGER;
   UPDATE tasks SET unfinished = ${UNFINISHED_OF_STATUS};
   ${ORDER_INDEX};
   DROP INDEX tasks_status_seq`
]
