// Types of streamgate.js, the client of the gateway's WebSocket endpoint
// GET /{version}/socket (subprotocol streamgate.v1).

/** The subprotocol the gateway speaks: "streamgate.v1". */
export declare const PROTOCOL: 'streamgate.v1';
/** The close code of refused credentials (a bad token). */
export declare const CLOSE_UNAUTHORIZED: 4401;
/** The close code of a client that read too slowly (its queue filled). */
export declare const CLOSE_TOO_SLOW: 4408;
/** details.reason of requests that were in flight on a lost socket. */
export declare const REASON_LOST: 'connection_lost';

/** What a WebSocket constructor must offer (the browser's, node's, or the ws package's). */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[]): WebSocketLike;
}

/** The part of a WebSocket the client uses. */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
}

/** The session's state, as onState reports it. */
export type SessionState = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface ConnectOptions {
  /** An API key or a JWT, sent as the first frame {"type":"auth","token"}. Without one the socket is anonymous. */
  token?: string;
  /** The WebSocket constructor. Default globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor;
  /** Reconnect delays in ms (default initialDelay 250, maxDelay 10000), or false to stay closed once lost. */
  reconnect?: false | { initialDelay?: number; maxDelay?: number };
  /** Bound in ms for opening the socket and signing in. Default 10000. */
  connectTimeout?: number;
  /** Called when the state changes: 'open' once signed in and, after a reconnect, every subscription renewed. */
  onState?: (state: SessionState) => void;
}

export interface RequestOptions {
  /** Aborting it rejects the request with the signal's reason and sends a cancel frame. */
  signal?: AbortSignal;
  /** ms: sent as timeout_ms; without an answer by then the request is cancelled and rejects with DEADLINE_EXCEEDED. */
  timeout?: number;
  /** Sent as idempotency_key: a retry with the same key replays the first answer. */
  idempotencyKey?: string;
}

/** A change of a subscribed topic. */
export interface StreamEvent<T = any> {
  topic: string;
  /**
   * Without epoch, the gateway's own count: it increases by one per
   * topic, and a jump means missed events. With epoch, the event log's
   * seq (the same on every gateway): it increases, with jumps where other
   * topics' events fall; losses come as gap markers.
   */
  seq: number;
  /** The event log's epoch seq belongs to, when the gateway reads events from JetStream. */
  epoch?: string;
  /** false in the gap marker of a subscription renewed after a reconnect whose missed events the gateway no longer holds: read the object again. */
  recovered?: false;
  /** The object as a GET of it returns it; null in a gap marker (gap true: events up to seq may be missing, none follows to tell) or with error. */
  data: T;
  /** Events may have been missed before this one (a seq jump, or a reconnect): read the object again. */
  gap: boolean;
  /** How many events were missed, when the seq tells. */
  missed?: number;
  /**
   * How many older states of the topic the gateway replaced with this one
   * because the client read slower than they came (the topic's resource
   * conflates): this event is the latest state and nothing is missing, so
   * gap stays false and seq jumps by skipped + 1.
   */
  skipped?: number;
  /** Set (with data null) when the subscription ended: the gateway refused the topic after a reconnect, or the session could not go on (a refused token). No events follow. */
  error?: StreamgateError;
}

/** Ends a subscription. */
export interface Unsubscribe {
  (): void;
  /** Resolves when the gateway accepted the subscription; rejects (e.g. 403, 404) as a GET of the object would. */
  ready: Promise<void>;
}

/** The rejection of a request: the gateway's error code, HTTP status and message. */
export declare class StreamgateError extends Error {
  constructor(code: string, status: number, message: string, details?: Record<string, unknown>);
  /** One of the gateway's error codes, e.g. NOT_FOUND, UNAUTHENTICATED. */
  readonly code: string;
  /** The HTTP status the code maps to. */
  readonly status: number;
  readonly details: Record<string, unknown>;
}

/** A session: one socket at a time, reopened (and re-subscribed) when lost. */
export declare class Session {
  private constructor();
  readonly state: SessionState;
  /** The seed's form: the version's route for the action, e.g. request('UPDATE_USER', 1, {name: 'Oska'}). */
  request<T = any>(action: string, id?: string | number | null, body?: unknown, opts?: RequestOptions): Promise<T>;
  /** REST's form: a method and a path after the version, e.g. fetch('GET', '/users/1'). */
  fetch<T = any>(method: string, path: string, body?: unknown, opts?: RequestOptions): Promise<T>;
  get<T = any>(path: string, opts?: RequestOptions): Promise<T>;
  post<T = any>(path: string, body?: unknown, opts?: RequestOptions): Promise<T>;
  put<T = any>(path: string, body?: unknown, opts?: RequestOptions): Promise<T>;
  patch<T = any>(path: string, body?: unknown, opts?: RequestOptions): Promise<T>;
  delete<T = any>(path: string, opts?: RequestOptions): Promise<T>;
  /** Calls onEvent for every change of the topic (orders/ID, items/ID). */
  subscribe<T = any>(topic: string, onEvent: (ev: StreamEvent<T>) => void): Unsubscribe;
  /** Closes the session for good; pending requests reject with CANCELED. */
  close(): void;
}

/** Opens a session; rejects with UNAUTHENTICATED when the token is refused. */
export declare function connect(url: string | URL, options?: ConnectOptions): Promise<Session>;
