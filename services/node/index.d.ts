// Types of @streamgate/service. The protocol is docs/protocol.md.

/** A key the service accepts: `authorization: Bearer SECRET` when a stream opens. */
export interface Key {
  /** Identifies the key; the principal's subject when the key does not delegate. Unique. */
  name: string;
  /** The key itself. Set secret or hash, not both. */
  secret?: string;
  /** hashKey(secret): "sha256:" and 64 hex digits, for configuration without secrets. */
  hash?: string;
  /** May name another principal in a request's meta (the gateway); sees every event. */
  delegate?: boolean;
  /** When not empty, the only actions the key may call (others: PERMISSION_DENIED); such a key may not subscribe. */
  actions?: string[];
  /** The key's roles when the key itself is the principal. */
  roles?: string[];
}

/** Log levels the runtime uses. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Logger receives the runtime's log records; see jsonLogger. */
export type Logger = (level: LogLevel, msg: string, fields: Record<string, unknown>) => void;

/** ServerConfig is a server's identity, keys and limits. */
export interface ServerConfig {
  /** The service's name, e.g. "users". Required. */
  name: string;
  /** The build version Describe shows. */
  version?: string;
  /** The keys accepted; at least one. */
  keys: Key[];
  /** Where the runtime logs what it cannot answer (handler failures, frames it could not send). Default: silent. */
  logger?: Logger;
  /** Requests in flight per stream; beyond it RESOURCE_EXHAUSTED. Default 1024. */
  maxInFlightPerStream?: number;
  /** Requests in flight on the server; beyond it RESOURCE_EXHAUSTED. Default 16384. */
  maxInFlight?: number;
  /** Largest request body in bytes; beyond it INVALID_ARGUMENT reason body_too_large. Default 1 MiB. */
  maxBodyBytes?: number;
  /** Largest gRPC message either way. Default 4 MiB. */
  maxFrameBytes?: number;
  /** How long shutdown waits for callers to close their streams, and a write's deadline when it has none. Default 10000. */
  drainTimeoutMs?: number;
  /** Identical concurrent reads share one handler run. Default true. */
  coalesce?: boolean;
  /** How many read results the cache keeps (actions with cacheTtlMs). Default 10000. */
  cacheEntries?: number;
  /** Signals that start shutdown once listening. Default ["SIGTERM", "SIGINT"]; [] for none. */
  signals?: NodeJS.Signals[];
}

/** ActionOptions declare an action's properties at registration. */
export interface ActionOptions {
  /** A read changes nothing: idempotent, coalesced, cacheable. Actions are writes unless marked. */
  read?: boolean;
  /** A write that is safe to send twice (PUT, DELETE). */
  idempotent?: boolean;
  /** A read whose answer is the same for every caller: shared between principals. */
  public?: boolean;
  /** How long a read's result may be cached (here and at the gateway). Default 0: not cached. */
  cacheTtlMs?: number;
  /** The API versions that support the action; others get NOT_SUPPORTED. Default: all. */
  versions?: string[];
  /** The longest the handler may run, whatever deadline the caller gave. Default: the caller's. */
  timeoutMs?: number;
  /** What the action does, for Describe. */
  doc?: string;
  /**
   * The body's fields: when set, the body must be a JSON object (or none)
   * with no other fields; another field is INVALID_ARGUMENT reason
   * unknown_field (details.field names it), and the handler does not run.
   */
  fields?: string[];
}

/** A principal: the end user, or the key itself when the caller does not delegate. */
export interface Principal {
  subject: string;
  roles: string[];
}

/** Meta travels with every request. */
export interface Meta {
  /** The API version the request came in on, e.g. "v2". */
  apiVersion: string;
  /** Who the request is for. */
  principal: Principal;
  /** The name of the key that opened the stream. */
  caller: string;
  /** W3C trace context. */
  traceparent: string;
  tracestate: string;
  /** The client's Idempotency-Key, for writes. */
  idempotencyKey: string;
  /** The id the edge assigned to the request. */
  requestId: string;
  /** For reads: which writes the caller has seen. */
  readEpoch: string;
}

/** Request is what a handler receives. */
export interface Request {
  /** The action's name. */
  action: string;
  /** The resource the action is about; "" for collection actions. */
  id: string;
  /** The JSON body, parsed; null when there is none. */
  body: unknown;
}

/** Context is a request's signal and meta. */
export interface Context {
  /** Aborts at the request's deadline, on a cancel frame, or (reads only) when the caller's stream ends. */
  signal: AbortSignal;
  meta: Meta;
  /** Says the answer is the stored outcome of an earlier request with the same idempotency key. */
  markReplayed(): void;
}

/** Handler runs an action: it returns the result (JSON-encodable) or throws (a SocketError chooses the code). */
export type Handler = (req: Request, ctx: Context) => unknown;

/** Who may see an event. */
export interface Visibility {
  public?: boolean;
  subjects?: string[];
  roles?: string[];
}

/** Server serves registered actions over the socket protocol, with gRPC health beside it. */
export declare class Server {
  /** The service's name. */
  readonly name: string;
  /** This instance's unique id (Describe, and the streamgate-instance header). */
  readonly instance: string;
  /** True once shutdown (or a signal) started. */
  readonly draining: boolean;
  /** Resolves when the server has stopped. */
  readonly closed: Promise<void>;
  /** Registers an action in UPPER_SNAKE_CASE. Register every action before listen. */
  handle(action: string, fn: Handler, opts?: ActionOptions): this;
  /** Serves on "host:port" (port 0 picks one); resolves with the address bound. */
  listen(address?: string): Promise<string>;
  /** Publishes an event on a topic to its subscribers; returns its seq. */
  publish(topic: string, data: unknown, visibility?: Visibility): number;
  /** Drains gracefully, then stops; resolves when stopped. */
  shutdown(): Promise<void>;
  /** Stops at once. */
  close(): void;
}

/** Returns a server with no actions. */
export declare function createServer(config: ServerConfig): Server;

/** The standard error codes. */
export declare const Codes: {
  readonly INVALID_ARGUMENT: "INVALID_ARGUMENT";
  readonly UNAUTHENTICATED: "UNAUTHENTICATED";
  readonly PERMISSION_DENIED: "PERMISSION_DENIED";
  readonly NOT_FOUND: "NOT_FOUND";
  readonly ALREADY_EXISTS: "ALREADY_EXISTS";
  readonly CONFLICT: "CONFLICT";
  readonly FAILED_PRECONDITION: "FAILED_PRECONDITION";
  readonly NOT_SUPPORTED: "NOT_SUPPORTED";
  readonly RESOURCE_EXHAUSTED: "RESOURCE_EXHAUSTED";
  readonly UNAVAILABLE: "UNAVAILABLE";
  readonly DEADLINE_EXCEEDED: "DEADLINE_EXCEEDED";
  readonly CANCELED: "CANCELED";
  readonly INTERNAL: "INTERNAL";
};

/** One of the standard error codes. */
export type Code = (typeof Codes)[keyof typeof Codes];

/** Reasons the runtime puts in details.reason. */
export declare const Reasons: {
  readonly DRAINING: "draining";
  readonly BODY_TOO_LARGE: "body_too_large";
  readonly UNKNOWN_FIELD: "unknown_field";
  readonly IDEMPOTENCY_KEY_REUSED: "idempotency_key_reused";
};

/** SocketError is the error that crosses a socket; its cause is logged, never sent. */
export declare class SocketError extends Error {
  constructor(code: Code | string, message: string, details?: Record<string, unknown>, options?: { cause?: unknown });
  code: string;
  details: Record<string, unknown> | undefined;
}

/** Returns "sha256:" and the hex digest of a secret, for Key.hash. */
export declare function hashKey(secret: string): string;

/** Returns a logger writing one JSON object per line (time, level, msg, fields) to out (default stderr). */
export declare function jsonLogger(out?: { write(s: string): unknown }): Logger;

/** Wraps a write so each (principal, idempotency key) applies at most once (keys kept in memory). */
export declare function idempotent(fn: Handler, opts?: { maxKeys?: number }): Handler;
