/**
 * Fixed values of the protocol between nodes, each defined once here with
 * its reason. They are not settings: every node of a cluster must use the
 * same ones (a schema bound one node applies to what another sends), or they
 * pace exchanges between nodes where no user choice would do better. The
 * settings a user may change, and their defaults, are in src/config.ts.
 *
 * Pure data: no imports, so src/core may use it too.
 */

// ---- Bounds of a task, checked on the HTTP API and again on the wire ------

/** Longest task id, node id, or origin id. */
export const MAX_ID_LENGTH = 128
/** Listen addresses a heartbeat may carry, and the longest one (a multiaddr string). */
export const MAX_HEARTBEAT_ADDRS = 8
export const MAX_ADDR_LENGTH = 256
/** Longest node name (a setting, carried in every heartbeat). */
export const MAX_NODE_NAME_LENGTH = 64
/** Longest task type name. */
export const MAX_TYPE_LENGTH = 64
/** Longest idempotency key. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 256
/** Priorities run from -MAX_PRIORITY to MAX_PRIORITY (higher runs first). */
export const MAX_PRIORITY = 1000
/** Largest per-attempt time limit a task may set (one day). */
export const MAX_TASK_TIMEOUT_MS = 86_400_000
/** Longest retention a task may ask for its finished record (`retainMs`; ten years). */
export const MAX_RETAIN_MS = 10 * 365 * 86_400_000
/** Longest delay a task may ask for (`delayMs`, or a `runAt` this far ahead of the submit: 366 days). */
export const MAX_DELAY_MS = 366 * 86_400_000
/** Most task types that may have a limit (`types` in the config, `PUT /v1/types/:type`). */
export const MAX_LIMITED_TYPES = 1000
/** Most recurring schedules a cluster keeps (deleted ones count until they are replaced), and the longest name of one. */
export const MAX_SCHEDULES = 1000
export const MAX_SCHEDULE_NAME_LENGTH = 100
/**
 * Largest payload of a schedule's task (JSON bytes; maxPayloadBytes too when
 * lower): every member keeps every schedule, and a new leader gathers them
 * all in one message per member.
 */
export const MAX_SCHEDULE_PAYLOAD_BYTES = 64 * 1024
/** Longest cron expression, and longest time zone name, of a schedule. */
export const MAX_CRON_LENGTH = 200
export const MAX_TIMEZONE_LENGTH = 64
/** Most labels a node may carry, or a task require; a label key and value (`*` in a requirement: any value) match these. */
export const MAX_LABELS = 16
export const LABEL_KEY_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$'
export const LABEL_VALUE_PATTERN = '^[A-Za-z0-9._:/-]{1,63}$'
export const LABEL_REQUIRE_PATTERN = '^(\\*|[A-Za-z0-9._:/-]{1,63})$'
/** Longest completion-callback or webhook URL, and the header names a callback may set (tokens of RFC 9110). */
export const MAX_CALLBACK_URL_LENGTH = 2048
export const CALLBACK_HEADER_PATTERN = "^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$"
/** Most attempts a task may allow. */
export const MAX_ATTEMPTS = 100
/** Most tasks (or task ids) in one RPC message; larger sets travel in several. */
export const MAX_TASKS_PER_MESSAGE = 10_000
/** Most records one page of a listing may carry (`limit` of GET /v1/tasks, and of an RPC `list`). */
export const MAX_LIST_PAGE = 1000
/**
 * Longest wait a request may ask for (`?wait=` on the HTTP API, `waitMs` of
 * an RPC `get`): a longer wait is cut to this.
 */
export const MAX_WAIT_MS = 600_000

/** An RPC `error` reply's message is cut to this length before it is sent (its code is one of RPC_ERROR_CODES). */
export const MAX_ERROR_MESSAGE_LENGTH = 4096

// ---- Heartbeats -----------------------------------------------------------

/** Upper bound of an encoded heartbeat; anything larger is rejected unread. */
export const MAX_HEARTBEAT_BYTES = 16 * 1024
/**
 * The slowest cadence a heartbeat may announce (a follower of a very large
 * cluster); its silence timeout scales with it (see silenceLimitsMs).
 */
export const MAX_HEARTBEAT_INTERVAL_MS = 600_000
/** The most members a state-sync reply carries (see src/protocol/member-sync.ts), and its largest frame. */
export const MAX_SYNC_MEMBERS = 4096
export const MAX_SYNC_FRAME_BYTES = 8 * 1024 * 1024
/**
 * How long a joining node waits for a state-sync reply before it asks another
 * member (and how long the member serves it). 5 s, not 2 s: on a host whose
 * cores are all busy (25 nodes on 2 cores), opening the stream and the two
 * frames took over 2 s, and most joiners never synced.
 */
export const SYNC_TIMEOUT_MS = 5_000
/** The most dead members a heartbeat carries (bounds its size)... */
export const MAX_DEAD_LISTED = 32
/** ...and the most a received one may carry (room to spare, so a sender is never refused for its dead list). */
export const MAX_DEAD_ACCEPTED = 2 * MAX_DEAD_LISTED
/**
 * Largest gossipsub frame read from a peer (one frame may bundle many
 * heartbeats and control messages; each heartbeat is still held to
 * MAX_HEARTBEAT_BYTES by the topic validator).
 */
export const MAX_GOSSIP_FRAME_BYTES = 1024 * 1024

// ---- RPC streams ----------------------------------------------------------

/** Time a peer has to send its first request frame after opening an RPC stream. */
export const REQUEST_READ_TIMEOUT_MS = 10_000
/**
 * RPC streams are kept open between requests (one request and its reply at a
 * time on each): opening a stream costs a protocol negotiation round trip and
 * a peer-store write, more than the request itself. A caller closes a stream
 * idle for IDLE_LANE_MS and keeps at most MAX_IDLE_LANES idle per peer; the
 * serving side closes one idle for much longer (SERVE_IDLE_MS: a caller that
 * vanished), so a caller never writes to a stream the server just closed.
 */
export const IDLE_LANE_MS = 30_000
export const MAX_IDLE_LANES = 16
export const SERVE_IDLE_MS = 4 * IDLE_LANE_MS
/** RPC streams open at once on one connection, each way (libp2p's per-protocol stream limit). */
export const MAX_RPC_STREAMS = 512

// ---- Task updates sent to holders (the outbox) ----------------------------

/** Most task updates in one `updates` RPC (a lane sends the rest in the next). */
export const OUTBOX_MAX_BATCH = 2_000
/** Backoff after a failed `updates` RPC to a live holder; doubles per failure up to OUTBOX_RETRY_MAX_MS. */
export const OUTBOX_RETRY_BASE_MS = 250
export const OUTBOX_RETRY_MAX_MS = 5_000
