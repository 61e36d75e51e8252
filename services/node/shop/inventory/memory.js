// The in-memory store: items and reservations in maps. Every method runs
// its change synchronously (no await between reading and writing), so on
// Node's one thread each is atomic, as the Go memory store is under its
// mutex.

import { MemoryLedger } from "../lib/once.js";
import {
  NotFound,
  Exists,
  NoReservation,
  ReservationChanged,
  OutOfStock,
  Overflow,
  HELD,
  RELEASED,
  byteCompare,
} from "./model.js";
import { MAX_INT } from "../lib/body.js";

/**
 * @typedef {import("./model.js").Item} Item
 * @typedef {import("./model.js").Reservation} Reservation
 * @typedef {import("./model.js").Shortage} Shortage
 * @typedef {import("../lib/once.js").Write} Write
 * @typedef {import("../lib/once.js").Key} Key
 */

/**
 * clone returns r with its own copy of the lines.
 * @param {Reservation} r
 * @returns {Reservation}
 */
function clone(r) {
  return { ...r, reserved: r.reserved.map((l) => ({ ...l })) };
}

/**
 * first sorts rows by id, byte-wise, and returns the first limit of them.
 * @template {{id: string}} T
 * @param {T[]} rows
 * @param {number} limit
 */
function first(rows, limit) {
  return rows.sort((a, b) => byteCompare(a.id, b.id)).slice(0, Math.max(limit, 0));
}

/** MemoryStore keeps items and reservations in maps. */
export class MemoryStore {
  constructor() {
    /** @type {Map<string, Item>} */
    this.items = new Map();
    /** @type {Map<string, Reservation>} */
    this.reservations = new Map();
    this.keys = new MemoryLedger();
  }

  /** @param {Key} k */
  async applied(k) {
    return this.keys.applied(k);
  }

  /** @param {string} id */
  async get(id) {
    const it = this.items.get(id);
    if (!it) throw new NotFound();
    return { ...it };
  }

  /** @param {{nameContains: string, after: string, limit: number}} q */
  async list(q) {
    const out = [...this.items.values()].filter((it) => byteCompare(it.id, q.after) > 0 && it.name.includes(q.nameContains));
    return first(out, q.limit).map((it) => ({ ...it }));
  }

  /**
   * @param {Item} it
   * @param {Write} w
   */
  async create(it, w) {
    return this.keys.write(w, () => {
      if (this.items.has(it.id)) throw new Exists();
      this.items.set(it.id, { ...it });
      return { ...it };
    });
  }

  /**
   * @param {string} id
   * @param {{name?: string, price_cents?: number, stock?: number}} p
   * @param {Write} w
   */
  async update(id, p, w) {
    return this.keys.write(w, () => {
      const old = this.items.get(id);
      if (!old) throw new NotFound();
      const it = { ...old, ...p };
      this.items.set(id, it);
      return { ...it };
    });
  }

  /**
   * @param {string} id
   * @param {Write} w
   */
  async delete(id, w) {
    return this.keys.write(w, () => {
      const it = this.items.get(id);
      if (!it) throw new NotFound();
      this.items.delete(id);
      return { ...it };
    });
  }

  /** @param {string[]} ids */
  async lookup(ids) {
    /** @type {Map<string, Item>} */
    const out = new Map();
    for (const id of ids) {
      const it = this.items.get(id);
      if (it) out.set(id, { ...it });
    }
    return out;
  }

  /**
   * reserve records r as held at version 1 and takes its stock, all or
   * none; a recorded id answers the stored reservation (a held one's
   * version moved on) with existed true.
   * @param {Reservation} r
   * @returns {Promise<{reservation: Reservation, existed: boolean}>}
   */
  async reserve(r) {
    const stored = this.reservations.get(r.id);
    if (stored) {
      if (stored.status === HELD) stored.version++;
      return { reservation: clone(stored), existed: true };
    }
    /** @type {Shortage[]} */
    const short = [];
    for (const l of r.reserved) {
      const stock = this.items.get(l.item_id)?.stock ?? 0;
      if (stock < l.quantity) short.push({ item_id: l.item_id, requested: l.quantity, in_stock: stock });
    }
    if (short.length > 0) throw new OutOfStock(short);
    for (const l of r.reserved) {
      const it = /** @type {Item} */ (this.items.get(l.item_id));
      this.items.set(l.item_id, { ...it, stock: it.stock - l.quantity });
    }
    const made = { ...clone(r), status: HELD, version: 1 };
    this.reservations.set(r.id, made);
    return { reservation: clone(made), existed: false };
  }

  /**
   * release marks the held reservation released and puts its stock back
   * (released true); a released one is answered unchanged. A version other
   * than 0 must be the held one's, else ReservationChanged.
   * @param {string} id
   * @param {number} version
   * @returns {Promise<{reservation: Reservation, released: boolean}>}
   */
  async release(id, version) {
    const r = this.reservations.get(id);
    if (!r) throw new NoReservation();
    if (r.status !== HELD) return { reservation: clone(r), released: false };
    if (version !== 0 && r.version !== version) throw new ReservationChanged(clone(r));
    for (const l of r.reserved) {
      const it = this.items.get(l.item_id);
      if (it && it.stock > MAX_INT - l.quantity) throw new Overflow(l);
    }
    for (const l of r.reserved) {
      const it = this.items.get(l.item_id);
      if (it) this.items.set(l.item_id, { ...it, stock: it.stock + l.quantity });
    }
    r.status = RELEASED;
    return { reservation: clone(r), released: true };
  }

  /** @param {string} id */
  async getReservation(id) {
    const r = this.reservations.get(id);
    if (!r) throw new NoReservation();
    return clone(r);
  }

  /** @param {{status: string, after: string, limit: number}} q */
  async listReservations(q) {
    const out = [...this.reservations.values()].filter((r) => byteCompare(r.id, q.after) > 0 && (q.status === "" || r.status === q.status));
    return first(out, q.limit).map(clone);
  }

  async close() {}
}
