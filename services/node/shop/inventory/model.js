// The inventory's records, store errors and the lines of a request, as the
// Go service has them (services/inventory: store.go, errors.go, lines.go,
// reservation.go).

import { SocketError, Codes } from "@streamgate/service";
import { MAX_INT, struct, str, int64, raw, list } from "../lib/body.js";

/** @typedef {{id: string, name: string, price_cents: number, stock: number}} Item */
/** @typedef {{item_id: string, quantity: number}} Line */
/** @typedef {{item_id: string, requested: number, in_stock: number}} Shortage */
/**
 * A reservation: createdAt is in nanoseconds since the Unix epoch.
 * @typedef {{id: string, reserved: Line[], status: string, version: number, createdAt: bigint}} Reservation
 */

export const HELD = "held";
export const RELEASED = "released";
export const UNKNOWN = "unknown";

/** The details reasons of the inventory's errors. */
export const ReasonOutOfStock = "out_of_stock";
export const ReasonReservationMismatch = "reservation_mismatch";
export const ReasonReservationReleased = "reservation_released";
export const ReasonReservationChanged = "reservation_changed";

/** maxLines bounds the lines of one request (and the ids of GET_PRICES). */
export const maxLines = 1000;

/** NotFound: no item has the id. */
export class NotFound extends Error {}
/** Exists: the item id is taken. */
export class Exists extends Error {}
/** NoReservation: no reservation has the id. */
export class NoReservation extends Error {}
/** ReservationChanged: a release asked for a version the held reservation is no longer at. */
export class ReservationChanged extends Error {
  /** @param {Reservation} reservation the stored one */
  constructor(reservation) {
    super("inventory: reservation reserved again");
    this.reservation = reservation;
  }
}
/** OutOfStock: stock cannot cover every line. */
export class OutOfStock extends Error {
  /** @param {Shortage[]} missing in the order of the reservation's lines */
  constructor(missing) {
    super("inventory: out of stock");
    this.missing = missing;
  }
}
/** Overflow: putting a line's stock back would pass the largest stock. */
export class Overflow extends Error {
  /** @param {Line} line */
  constructor(line) {
    super(`inventory: releasing ${line.quantity} of item ${q(line.item_id)} would overflow its stock`);
    this.line = line;
  }
}

/**
 * q quotes a string for a message, as Go's %q does for printable text.
 * @param {string} s
 */
export function q(s) {
  return JSON.stringify(s);
}

/**
 * storeError turns a store error into the client's answer; id names the
 * item or reservation asked for. Other errors pass unchanged.
 * @param {unknown} e
 * @param {string} id
 * @returns {unknown}
 */
export function storeError(e, id) {
  if (e instanceof NotFound) return new SocketError(Codes.NOT_FOUND, `no item ${q(id)}`);
  if (e instanceof Exists) return new SocketError(Codes.ALREADY_EXISTS, `item ${q(id)} already exists`);
  if (e instanceof NoReservation) return new SocketError(Codes.NOT_FOUND, `no reservation ${q(id)}`);
  if (e instanceof OutOfStock) return outOfStock(e.missing);
  if (e instanceof Overflow) {
    return new SocketError(Codes.INVALID_ARGUMENT, `releasing ${e.line.quantity} of item ${q(e.line.item_id)} would overflow its stock`);
  }
  return e;
}

/**
 * outOfStock is the error of REQUIRE_AVAILABLE and RESERVE_STOCK when stock
 * cannot cover every line.
 * @param {Shortage[]} missing
 */
export function outOfStock(missing) {
  return new SocketError(Codes.FAILED_PRECONDITION, "out of stock", { reason: ReasonOutOfStock, missing });
}

/** The line of a request at the top level: decoded strictly. */
const Line = struct("inventory.Line", { item_id: str, quantity: int64 });
/** A line inside an order: its other fields are ignored. */
const OrderLine = struct("inventory.Line", { item_id: str, quantity: int64 }, { strict: false });
const OrderLines = struct("inventory.orderLines", { lines: list(OrderLine) }, { strict: false });

/** The fields of LinesInput (CHECK_AVAILABLE, REQUIRE_AVAILABLE, RESERVE_STOCK). */
export const linesFields = { lines: list(Line), order: raw };

/**
 * LinesInput decoded: lines at the top level, or an order holding them.
 * @typedef {{lines?: Partial<Line>[], order?: unknown}} LinesInput
 */

/**
 * given reports whether the body names lines at all, in either shape.
 * @param {LinesInput} input
 */
export function given(input) {
  return input.lines !== undefined || input.order !== undefined;
}

/**
 * merged validates the lines and sums the quantities of lines naming the
 * same item, keeping the order of first appearance.
 * @param {LinesInput} input
 * @returns {Line[]}
 */
export function merged(input) {
  let lines = input.lines;
  let field = "lines";
  if (input.lines !== undefined && input.order !== undefined) {
    throw new SocketError(Codes.INVALID_ARGUMENT, "give either lines or order, not both");
  }
  if (input.order !== undefined) {
    const o = /** @type {{lines?: Partial<Line>[]}} */ (OrderLines.decode(input.order, "order"));
    lines = o.lines;
    field = "order.lines";
  }
  if (!lines || lines.length === 0) {
    throw new SocketError(Codes.INVALID_ARGUMENT, `${field}: at least one line is required`);
  }
  if (lines.length > maxLines) {
    throw new SocketError(Codes.INVALID_ARGUMENT, `${field}: at most ${maxLines} lines`);
  }
  /** @type {Line[]} */
  const out = [];
  /** @type {Map<string, number>} */
  const at = new Map();
  lines.forEach((l, i) => {
    const itemID = l.item_id ?? "";
    const quantity = l.quantity ?? 0;
    if (itemID === "") throw new SocketError(Codes.INVALID_ARGUMENT, `${field}[${i}].item_id is required`);
    if (quantity < 1) throw new SocketError(Codes.INVALID_ARGUMENT, `${field}[${i}].quantity must be at least 1`);
    const j = at.get(itemID);
    if (j === undefined) {
      at.set(itemID, out.length);
      out.push({ item_id: itemID, quantity });
      return;
    }
    if (out[j].quantity > MAX_INT - quantity) {
      throw new SocketError(Codes.INVALID_ARGUMENT, `${field}: total quantity of item ${q(itemID)} is too large`);
    }
    out[j].quantity += quantity;
  });
  return out;
}

/**
 * byteCompare orders strings by their UTF-8 bytes, as Go and COLLATE "C" do.
 * @param {string} a
 * @param {string} b
 */
export function byteCompare(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

/**
 * byItemID returns a copy of lines sorted by item id, the order in which
 * stores touch items so that concurrent changes cannot deadlock.
 * @param {Line[]} lines
 */
export function byItemID(lines) {
  return [...lines].sort((a, b) => byteCompare(a.item_id, b.item_id));
}

/**
 * sameLines reports whether two lists of merged lines ask for the same
 * quantities of the same items, in any order.
 * @param {Line[]} a
 * @param {Line[]} b
 */
export function sameLines(a, b) {
  const x = byItemID(a);
  const y = byItemID(b);
  return x.length === y.length && x.every((l, i) => l.item_id === y[i].item_id && l.quantity === y[i].quantity);
}

/**
 * rfc3339Nano formats nanoseconds since the epoch as Go's time.RFC3339Nano
 * in UTC (trailing zeros of the fraction dropped).
 * @param {bigint} nanos
 */
export function rfc3339Nano(nanos) {
  const ms = nanos / 1_000_000n - (nanos % 1_000_000n < 0n ? 1n : 0n);
  const base = new Date(Number(ms)).toISOString().slice(0, 19);
  const frac = ((nanos % 1_000_000_000n) + 1_000_000_000n) % 1_000_000_000n;
  const digits = frac.toString().padStart(9, "0").replace(/0+$/, "");
  return `${base}${digits ? "." + digits : ""}Z`;
}

/** now returns the time in nanoseconds since the epoch. */
export function nowNanos() {
  return BigInt(Date.now()) * 1_000_000n;
}

/**
 * wire is a reservation as RESERVE_STOCK and LIST_RESERVATIONS answer it.
 * @param {Reservation} r
 */
export function wire(r) {
  return { reservation_id: r.id, reserved: r.reserved, status: r.status, version: r.version, created_at: rfc3339Nano(r.createdAt) };
}
