// The inventory service's actions, as the Go service registers them
// (services/inventory/service.go, reservation.go): the same names, kinds,
// bodies, results, errors, reasons and events.

import { randomBytes } from "node:crypto";
import { SocketError, Codes } from "@streamgate/service";
import { decode, struct, str, int64, int, list } from "../lib/body.js";
import { keyed } from "../lib/once.js";
import { adminOnly, outagesUnavailable, pageSize, cut, Publisher } from "../lib/shop.js";
import {
  NotFound,
  NoReservation,
  ReservationChanged,
  HELD,
  RELEASED,
  UNKNOWN,
  ReasonReservationMismatch,
  ReasonReservationReleased,
  ReasonReservationChanged,
  maxLines,
  linesFields,
  merged,
  given,
  sameLines,
  storeError,
  outOfStock,
  wire,
  nowNanos,
  q,
} from "./model.js";

/**
 * @typedef {import("./model.js").Item} Item
 * @typedef {import("./model.js").Line} Line
 * @typedef {import("./model.js").Reservation} Reservation
 * @typedef {import("../lib/once.js").Write} Write
 * @typedef {import("./memory.js").MemoryStore | import("./postgres.js").PostgresStore} Store
 */

const maxNameLen = 200; // characters
const idPrefix = "itm_";
const maxReservationIDLen = 255; // bytes
const validID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

const CreateInput = struct("inventory.CreateInput", { id: str, name: str, price_cents: int64, stock: int64 });
const UpdateInput = struct("inventory.UpdateInput", { name: str, price_cents: int64, stock: int64 });
const ListInput = struct("inventory.ListInput", { name: str, page_size: int, page_token: str });
const Empty = struct("struct {}", {});
const LinesInput = struct("inventory.LinesInput", linesFields);
const ReleaseInput = struct("inventory.ReleaseInput", { ...linesFields, version: int64 });
const ReservationsInput = struct("inventory.ReservationsInput", { status: str, page_size: int, page_token: str });
const PricesInput = struct("inventory.PricesInput", { item_ids: list(str) });

/** The action docs, word for word the Go service's. */
const DOCS = {
  GET_ITEM: "Returns one item {id, name, price_cents, stock}. Anyone may read.",
  LIST_ITEMS: "Lists items by id, filtered by name (case-sensitive substring), paged by page_size (default 50, max 1000) and page_token. Anyone may read.",
  CREATE_ITEM: "Creates an item from {id?, name, price_cents, stock?}; admins only. A taken id is ALREADY_EXISTS.",
  UPDATE_ITEM: "Changes the fields given of {name, price_cents, stock}; admins only.",
  DELETE_ITEM: "Deletes an item and returns it; admins only.",
  CHECK_AVAILABLE: `Reports whether stock covers {"lines": [{item_id, quantity}]} or {"order": {"lines": …}}: {available, missing: [{item_id, requested, in_stock}]}. Never fails for lack of stock.`,
  REQUIRE_AVAILABLE: "CHECK_AVAILABLE that fails with FAILED_PRECONDITION (reason out_of_stock, details missing) when stock is short; for pipelines.",
  RESERVE_STOCK: `Reserves stock for {"lines": […]} or {"order": {"lines": …}} under a reservation id: the resource id, else the Idempotency-Key, else INVALID_ARGUMENT. The first time it takes the quantities out of stock, all or none, and records the reservation: {reservation_id, reserved: [{item_id, quantity}], status: "held", created_at}; short stock is FAILED_PRECONDITION (reason out_of_stock, details missing) and records nothing. The same id and lines again answer the stored reservation (a replay) without taking stock; other lines are CONFLICT (reason reservation_mismatch); a released id is FAILED_PRECONDITION (reason reservation_released).`,
  RELEASE_STOCK: `RESERVE_STOCK's compensation, for reservation id (required): puts a held reservation's stock back, all lines or none, exactly once, and answers {reservation_id, released: [{item_id, quantity}], status: "released"}; a released one is answered unchanged. An id never reserved answers {released: [], status: "unknown"} and touches no stock. A body with lines is optional; given, it must be the reservation's (else CONFLICT, reason reservation_mismatch). A version (from LIST_RESERVATIONS) is optional; given, a reservation held at another version (reserved again since: its purchase goes on) is not released: CONFLICT, reason reservation_changed. Items deleted since the reservation are skipped.`,
  LIST_RESERVATIONS: `Lists reservations by id, filtered by status ("held" or "released"), paged by page_size (default 50, max 1000) and page_token: {reservations: [{reservation_id, reserved, status, version, created_at}], next_page_token}. Admins only; for reconciling reservations held by abandoned purchases.`,
  GET_PRICES: `Returns {"prices": {id: cents}} for {"item_ids": […]}; unknown ids are NOT_FOUND.`,
};

/**
 * register adds the inventory actions to server, kept in st. Every change
 * of an item is published on "items/{id}", public, with the item as
 * GET_ITEM answers it (or {"id", "deleted": true}).
 * @param {import("@streamgate/service").Server} server
 * @param {Store} st
 * @param {{warn?: (msg: string, fields: Record<string, unknown>) => void}} [opts]
 */
export function register(server, st, opts = {}) {
  const pub = new Publisher(server, opts.warn);
  /** @param {string[]} ids */
  const changed = (ids) =>
    Promise.all(
      ids.map((id) =>
        pub.changed("items", id, { public: true }, async () => {
          try {
            return await st.get(id);
          } catch (e) {
            if (e instanceof NotFound) return null;
            throw e;
          }
        }),
      ),
    );
  const s = new Service(st, changed);
  /**
   * @param {string} name
   * @param {(req: any, ctx: any) => unknown} fn
   * @param {import("@streamgate/service").ActionOptions} options
   */
  const handle = (name, fn, options) => server.handle(name, outagesUnavailable(fn), { ...options, doc: DOCS[/** @type {keyof DOCS} */ (name)] });
  handle("GET_ITEM", (req) => s.get(req), { read: true });
  handle("LIST_ITEMS", (req) => s.list(req), { read: true });
  handle("CREATE_ITEM", adminOnly("create items", keyed(st, (req, _ctx, w) => s.create(req, w))), {});
  handle("UPDATE_ITEM", adminOnly("update items", keyed(st, (req, _ctx, w) => s.update(req, w))), { idempotent: true });
  handle("DELETE_ITEM", adminOnly("delete items", keyed(st, (req, _ctx, w) => s.delete(req, w))), { idempotent: true });
  handle("CHECK_AVAILABLE", (req) => s.check(req), { read: true });
  handle("REQUIRE_AVAILABLE", (req) => s.require(req), { read: true });
  handle("RESERVE_STOCK", (req, ctx) => s.reserve(req, ctx), { idempotent: true });
  handle("RELEASE_STOCK", (req, ctx) => s.release(req, ctx), { idempotent: true });
  handle("LIST_RESERVATIONS", adminOnly("list reservations", (req) => s.listReservations(req)), { read: true });
  handle("GET_PRICES", (req) => s.prices(req), { read: true });
}

class Service {
  /**
   * @param {Store} st
   * @param {(ids: string[]) => Promise<unknown>} changed publishes the items' states
   */
  constructor(st, changed) {
    this.st = st;
    this.changed = changed;
  }

  /** @param {any} req */
  async get(req) {
    decode(Empty, req.body);
    if (req.id === "") throw new SocketError(Codes.INVALID_ARGUMENT, "item id is required");
    try {
      return await this.st.get(req.id);
    } catch (e) {
      throw storeError(e, req.id);
    }
  }

  /** @param {any} req */
  async list(req) {
    /** @type {{name?: string, page_size?: number, page_token?: string}} */
    const input = decode(ListInput, req.body);
    const size = pageSize(input.page_size);
    const items = await this.st.list({ nameContains: input.name ?? "", after: input.page_token ?? "", limit: size + 1 });
    const [page, next] = cut(items, size, (it) => it.id);
    return next === "" ? { items: page } : { items: page, next_page_token: next };
  }

  /**
   * @param {any} req
   * @param {Write} w
   */
  async create(req, w) {
    /** @type {{id?: string, name?: string, price_cents?: number, stock?: number}} */
    const input = decode(CreateInput, req.body);
    const name = checkName(input.name ?? "");
    const stock = input.stock ?? 0;
    if (input.id && !validID.test(input.id)) {
      throw new SocketError(Codes.INVALID_ARGUMENT, "id must be 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit");
    }
    if (input.price_cents === undefined) throw new SocketError(Codes.INVALID_ARGUMENT, "price_cents is required");
    if (input.price_cents < 0) throw new SocketError(Codes.INVALID_ARGUMENT, "price_cents must not be negative");
    if (stock < 0) throw new SocketError(Codes.INVALID_ARGUMENT, "stock must not be negative");
    /** @type {Item} */
    const it = { id: input.id ?? "", name, price_cents: input.price_cents, stock };
    if (it.id !== "") {
      return this.created(it, w);
    }
    for (let attempt = 1; ; attempt++) {
      // A made id is taken only by a rare collision.
      it.id = idPrefix + randomBytes(6).toString("hex");
      try {
        return await this.created(it, w);
      } catch (e) {
        if (attempt === 3 || !(e instanceof SocketError) || e.code !== Codes.ALREADY_EXISTS) throw e;
      }
    }
  }

  /**
   * @param {Item} it
   * @param {Write} w
   */
  async created(it, w) {
    let out;
    try {
      out = await this.st.create(it, w);
    } catch (e) {
      throw storeError(e, it.id);
    }
    await this.changed([it.id]);
    return out;
  }

  /**
   * @param {any} req
   * @param {Write} w
   */
  async update(req, w) {
    /** @type {{name?: string, price_cents?: number, stock?: number}} */
    const input = decode(UpdateInput, req.body);
    if (req.id === "") throw new SocketError(Codes.INVALID_ARGUMENT, "item id is required");
    /** @type {{name?: string, price_cents?: number, stock?: number}} */
    const p = {};
    if (input.name !== undefined) p.name = checkName(input.name);
    if (input.price_cents !== undefined) {
      if (input.price_cents < 0) throw new SocketError(Codes.INVALID_ARGUMENT, "price_cents must not be negative");
      p.price_cents = input.price_cents;
    }
    if (input.stock !== undefined) {
      if (input.stock < 0) throw new SocketError(Codes.INVALID_ARGUMENT, "stock must not be negative");
      p.stock = input.stock;
    }
    let out;
    try {
      out = await this.st.update(req.id, p, w);
    } catch (e) {
      throw storeError(e, req.id);
    }
    await this.changed([req.id]);
    return out;
  }

  /**
   * @param {any} req
   * @param {Write} w
   */
  async delete(req, w) {
    decode(Empty, req.body);
    if (req.id === "") throw new SocketError(Codes.INVALID_ARGUMENT, "item id is required");
    let out;
    try {
      out = await this.st.delete(req.id, w);
    } catch (e) {
      throw storeError(e, req.id);
    }
    await this.changed([req.id]);
    return out;
  }

  /** @param {any} req */
  async check(req) {
    const lines = merged(decode(LinesInput, req.body));
    const items = await this.st.lookup(lines.map((l) => l.item_id));
    const missing = [];
    for (const l of lines) {
      const stock = items.get(l.item_id)?.stock ?? 0;
      if (stock < l.quantity) missing.push({ item_id: l.item_id, requested: l.quantity, in_stock: stock });
    }
    return { available: missing.length === 0, missing };
  }

  /** @param {any} req */
  async require(req) {
    const a = await this.check(req);
    if (!a.available) throw outOfStock(a.missing);
    return a;
  }

  /** @param {any} req */
  async prices(req) {
    /** @type {{item_ids?: string[]}} */
    const input = decode(PricesInput, req.body);
    const asked = input.item_ids ?? [];
    if (asked.length === 0) throw new SocketError(Codes.INVALID_ARGUMENT, "item_ids: at least one id is required");
    if (asked.length > maxLines) throw new SocketError(Codes.INVALID_ARGUMENT, `item_ids: at most ${maxLines} ids`);
    /** @type {string[]} */
    const ids = [];
    asked.forEach((id, i) => {
      if (id === "") throw new SocketError(Codes.INVALID_ARGUMENT, `item_ids[${i}] must not be empty`);
      if (!ids.includes(id)) ids.push(id);
    });
    const items = await this.st.lookup(ids);
    /** @type {Record<string, number>} */
    const prices = {};
    const unknown = [];
    for (const id of ids) {
      const it = items.get(id);
      if (it) prices[id] = it.price_cents;
      else unknown.push(id);
    }
    if (unknown.length > 0) {
      throw new SocketError(Codes.NOT_FOUND, `no items ${unknown.map(q).join(", ")}`, { item_ids: unknown });
    }
    // Go writes a map's keys sorted.
    return { prices: Object.fromEntries(Object.entries(prices).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) };
  }

  /**
   * reserve records the reservation and takes its stock, once per id: the
   * same id and lines again answer the stored reservation as a replay.
   * @param {any} req
   * @param {any} ctx
   */
  async reserve(req, ctx) {
    const input = decode(LinesInput, req.body);
    const id = req.id !== "" ? req.id : ctx.meta.idempotencyKey;
    checkReservationID(id);
    const lines = merged(input);
    let res;
    try {
      res = await this.st.reserve({ id, reserved: lines, status: HELD, version: 1, createdAt: nowNanos() });
    } catch (e) {
      throw storeError(e, id);
    }
    const r = res.reservation;
    if (!res.existed) {
      await this.changed(r.reserved.map((l) => l.item_id));
      return wire(r);
    }
    if (!sameLines(r.reserved, lines)) throw errMismatch(id);
    if (r.status !== HELD) {
      throw new SocketError(Codes.FAILED_PRECONDITION, `reservation ${q(id)} was released; reserve again under a new id`, {
        reason: ReasonReservationReleased,
        reservation_id: id,
        status: r.status,
      });
    }
    ctx.markReplayed();
    return wire(r);
  }

  /**
   * release puts a held reservation's stock back, once. Lines, when given,
   * must be the reservation's; a version, when given, must be the held
   * reservation's. An unknown id changes nothing.
   * @param {any} req
   * @param {any} ctx
   */
  async release(req, ctx) {
    /** @type {import("./model.js").LinesInput & {version?: number}} */
    const input = decode(ReleaseInput, req.body);
    const id = req.id;
    checkReservationID(id);
    const version = input.version ?? 0;
    if (version < 0) {
      throw new SocketError(Codes.INVALID_ARGUMENT, "version must be at least 1 when given", { field: "version" });
    }
    const unknown = { reservation_id: id, released: /** @type {Line[]} */ ([]), status: UNKNOWN };
    if (given(input)) {
      const lines = merged(input);
      // A reservation's lines never change, so checking them before
      // releasing cannot race.
      let r;
      try {
        r = await this.st.getReservation(id);
      } catch (e) {
        if (e instanceof NoReservation) return unknown;
        throw storeError(e, id);
      }
      if (!sameLines(r.reserved, lines)) throw errMismatch(id);
    }
    let res;
    try {
      res = await this.st.release(id, version);
    } catch (e) {
      if (e instanceof NoReservation) return unknown;
      if (e instanceof ReservationChanged) {
        throw new SocketError(Codes.CONFLICT, `reservation ${q(id)} was reserved again since version ${version}; it is not released`, {
          reason: ReasonReservationChanged,
          reservation_id: id,
          version: e.reservation.version,
        });
      }
      throw storeError(e, id);
    }
    const r = res.reservation;
    if (res.released) {
      await this.changed(r.reserved.map((l) => l.item_id));
    } else {
      ctx.markReplayed();
    }
    return { reservation_id: r.id, released: r.reserved, status: r.status };
  }

  /** @param {any} req */
  async listReservations(req) {
    /** @type {{status?: string, page_size?: number, page_token?: string}} */
    const input = decode(ReservationsInput, req.body);
    const size = pageSize(input.page_size);
    const status = input.status ?? "";
    if (status !== "" && status !== HELD && status !== RELEASED) {
      throw new SocketError(Codes.INVALID_ARGUMENT, `status must be "${HELD}" or "${RELEASED}"`);
    }
    const rs = await this.st.listReservations({ status, after: input.page_token ?? "", limit: size + 1 });
    const [page, next] = cut(rs, size, (r) => r.id);
    const out = page.map(wire);
    return next === "" ? { reservations: out } : { reservations: out, next_page_token: next };
  }
}

/**
 * checkName trims a name and refuses an empty or long one.
 * @param {string} name
 */
function checkName(name) {
  const trimmed = goTrimSpace(name);
  if (trimmed === "") throw new SocketError(Codes.INVALID_ARGUMENT, "name is required");
  if ([...trimmed].length > maxNameLen) throw new SocketError(Codes.INVALID_ARGUMENT, `name must be at most ${maxNameLen} characters`);
  return trimmed;
}

/**
 * goTrimSpace is Go's strings.TrimSpace: it trims Unicode White_Space.
 * @param {string} s
 */
function goTrimSpace(s) {
  return s.replace(/^[\t\n\v\f\r \u0085\u00A0\p{Z}]+|[\t\n\v\f\r \u0085\u00A0\p{Z}]+$/gu, "");
}

/**
 * checkReservationID refuses an empty id and one that is not printable
 * UTF-8 of at most 255 bytes.
 * @param {string} id
 */
function checkReservationID(id) {
  if (id === "") throw new SocketError(Codes.INVALID_ARGUMENT, "a reservation id is required");
  if (Buffer.byteLength(id, "utf8") > maxReservationIDLen) {
    throw new SocketError(Codes.INVALID_ARGUMENT, `a reservation id must be at most ${maxReservationIDLen} bytes`);
  }
  if (!id.isWellFormed() || /\p{Cc}/u.test(id)) {
    throw new SocketError(Codes.INVALID_ARGUMENT, "a reservation id must be UTF-8 without control characters");
  }
}

/** @param {string} id */
function errMismatch(id) {
  return new SocketError(Codes.CONFLICT, `reservation ${q(id)} was made with other lines`, {
    reason: ReasonReservationMismatch,
    reservation_id: id,
  });
}
