// The PostgreSQL store, on exactly the Go store's schema
// (services/inventory/sqlstore.go, sqlreservations.go): the same CREATE
// TABLE IF NOT EXISTS statements and migrations, and the same
// transactions, so a Go and a Node instance can share one database. Stock
// changes are single conditional UPDATEs inside the reservation's
// transaction, so stock never goes below zero; the reservation id is the
// primary key, so an id takes stock once however many instances race.

import { AppliedError } from "../lib/once.js";
import {
  NotFound,
  Exists,
  NoReservation,
  ReservationChanged,
  OutOfStock,
  Overflow,
  HELD,
  RELEASED,
  byItemID,
} from "./model.js";
import { MAX_INT } from "../lib/body.js";
import { openPool, isUniqueViolation } from "../lib/pg.js";

/**
 * @typedef {import("./model.js").Item} Item
 * @typedef {import("./model.js").Line} Line
 * @typedef {import("./model.js").Reservation} Reservation
 * @typedef {import("./model.js").Shortage} Shortage
 * @typedef {import("../lib/once.js").Write} Write
 * @typedef {import("../lib/once.js").Key} Key
 * @typedef {any} PoolClient a pg client (pg ships no types)
 * @typedef {any} Pool a pg pool
 */

/** The migrations, as the Go store runs them (sqlstore.go). */
const idType = `TEXT COLLATE "C"`;
const MIGRATE = [
  `CREATE TABLE IF NOT EXISTS items (
			id          ${idType} PRIMARY KEY,
			name        TEXT   NOT NULL,
			price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
			stock       BIGINT NOT NULL CHECK (stock >= 0)
		)`,
  `CREATE TABLE IF NOT EXISTS reservations (
			id         ${idType} PRIMARY KEY,
			lines      TEXT   NOT NULL,
			status     TEXT   NOT NULL CHECK (status IN ('held', 'released')),
			created_at BIGINT NOT NULL,
			version    BIGINT NOT NULL DEFAULT 1
		)`,
  `CREATE INDEX IF NOT EXISTS reservations_by_status ON reservations (status, id)`,
];
const ADD_VERSION = `ALTER TABLE reservations ADD COLUMN IF NOT EXISTS version BIGINT NOT NULL DEFAULT 1`;
/** The applied keys' table, as once.NewTable makes it. */
const KEYS_TABLE = "inventory_applied_keys";
const MIGRATE_KEYS = `CREATE TABLE IF NOT EXISTS ${KEYS_TABLE} (
			subject     TEXT   NOT NULL,
			idem_key    TEXT   NOT NULL,
			fingerprint TEXT   NOT NULL,
			result      TEXT   NOT NULL,
			created_at  BIGINT NOT NULL,
			PRIMARY KEY (subject, idem_key)
		)`;

const itemColumns = `id, name, price_cents, stock`;
const reservationColumns = `id, lines, status, created_at, version`;

/**
 * @param {any} row
 * @returns {Item}
 */
function toItem(row) {
  return { id: row.id, name: row.name, price_cents: Number(row.price_cents), stock: Number(row.stock) };
}

/**
 * @param {any} row
 * @returns {Reservation}
 */
function toReservation(row) {
  return {
    id: row.id,
    reserved: JSON.parse(row.lines),
    status: row.status,
    version: Number(row.version),
    createdAt: BigInt(row.created_at),
  };
}

/**
 * tx runs fn in a transaction on one connection of pool: committed when fn
 * returns, rolled back when it throws.
 * @template T
 * @param {Pool} pool
 * @param {(c: PoolClient) => Promise<T>} fn
 * @returns {Promise<T>}
 */
async function tx(pool, fn) {
  const c = await pool.connect();
  let broken = false;
  try {
    await c.query("BEGIN");
    const out = await fn(c);
    await c.query("COMMIT");
    return out;
  } catch (e) {
    await c.query("ROLLBACK").catch(() => {
      broken = true;
    });
    throw e;
  } finally {
    c.release(broken);
  }
}

/** PostgresStore keeps items, reservations and applied keys in PostgreSQL. */
export class PostgresStore {
  /**
   * open connects to dsn (a postgres:// URL; a search_path parameter
   * selects the schema), migrates the schema and returns the store.
   * @param {string} dsn
   */
  static async open(dsn) {
    const pool = openPool(dsn);
    try {
      await tx(pool, async (c) => {
        for (const s of MIGRATE) await c.query(s);
      });
      await tx(pool, (c) => c.query(ADD_VERSION));
      await tx(pool, (c) => c.query(MIGRATE_KEYS));
    } catch (e) {
      await pool.end().catch(() => {});
      throw e;
    }
    return new PostgresStore(pool);
  }

  /** @param {Pool} pool */
  constructor(pool) {
    this.pool = pool;
  }

  async close() {
    await this.pool.end();
  }

  /** @param {Key} k */
  async applied(k) {
    return applied(this.pool, k);
  }

  /**
   * keyedWrite runs write in one transaction; under w's key it first
   * claims the key (a concurrent claim waits for the other transaction)
   * and keeps write's result with it, as once.Table.Write does.
   * @template T
   * @param {Write} w
   * @param {(c: PoolClient) => Promise<T>} write
   * @returns {Promise<T>}
   */
  async keyedWrite(w, write) {
    const k = w.key;
    const result = await tx(this.pool, async (c) => {
      if (k) {
        const claimed = await c.query(
          `INSERT INTO ${KEYS_TABLE} (subject, idem_key, fingerprint, result, created_at) VALUES ($1, $2, $3, '', $4)
		ON CONFLICT (subject, idem_key) DO NOTHING`,
          [k.subject, k.id, k.fingerprint, (BigInt(Date.now()) * 1_000_000n).toString()],
        );
        if (claimed.rowCount !== 1) {
          const rec = await applied(c, k);
          if (!rec) throw new Error("claim idempotency key: taken, then gone");
          throw new AppliedError(rec);
        }
      }
      const out = await write(c);
      if (k) {
        await c.query(`UPDATE ${KEYS_TABLE} SET result = $1 WHERE subject = $2 AND idem_key = $3`, [JSON.stringify(out), k.subject, k.id]);
      }
      return out;
    });
    if (k) w.kept = true;
    return result;
  }

  /** @param {string} id */
  async get(id) {
    const r = await this.pool.query(`SELECT ${itemColumns} FROM items WHERE id = $1`, [id]);
    if (r.rowCount === 0) throw new NotFound();
    return toItem(r.rows[0]);
  }

  /** @param {{nameContains: string, after: string, limit: number}} q */
  async list(q) {
    let query = `SELECT ${itemColumns} FROM items WHERE id > $1`;
    /** @type {unknown[]} */
    const args = [q.after];
    if (q.nameContains !== "") {
      args.push(q.nameContains);
      query += ` AND strpos(name, $${args.length}) > 0`;
    }
    args.push(q.limit);
    query += ` ORDER BY id LIMIT $${args.length}`;
    const r = await this.pool.query(query, args);
    return r.rows.map(toItem);
  }

  /**
   * @param {Item} it
   * @param {Write} w
   */
  async create(it, w) {
    return this.keyedWrite(w, async (c) => {
      try {
        await c.query(`INSERT INTO items (${itemColumns}) VALUES ($1, $2, $3, $4)`, [it.id, it.name, it.price_cents, it.stock]);
      } catch (e) {
        if (isUniqueViolation(e)) throw new Exists();
        throw e;
      }
      return { ...it };
    });
  }

  /**
   * @param {string} id
   * @param {{name?: string, price_cents?: number, stock?: number}} p
   * @param {Write} w
   */
  async update(id, p, w) {
    return this.writeItem(
      w,
      `UPDATE items SET
		name = COALESCE($1, name), price_cents = COALESCE($2, price_cents), stock = COALESCE($3, stock)
		WHERE id = $4 RETURNING ${itemColumns}`,
      [p.name ?? null, p.price_cents ?? null, p.stock ?? null, id],
    );
  }

  /**
   * @param {string} id
   * @param {Write} w
   */
  async delete(id, w) {
    return this.writeItem(w, `DELETE FROM items WHERE id = $1 RETURNING ${itemColumns}`, [id]);
  }

  /**
   * writeItem runs a statement returning one item row as a keyed write;
   * NotFound when it returns none.
   * @param {Write} w
   * @param {string} query
   * @param {unknown[]} args
   */
  async writeItem(w, query, args) {
    return this.keyedWrite(w, async (c) => {
      const r = await c.query(query, args);
      if (r.rowCount === 0) throw new NotFound();
      return toItem(r.rows[0]);
    });
  }

  /** @param {string[]} ids */
  async lookup(ids) {
    /** @type {Map<string, Item>} */
    const out = new Map();
    if (ids.length === 0) return out;
    const marks = ids.map((_, i) => `$${i + 1}`).join(", ");
    const r = await this.pool.query(`SELECT ${itemColumns} FROM items WHERE id IN (${marks})`, ids);
    for (const row of r.rows) out.set(row.id, toItem(row));
    return out;
  }

  /**
   * reserve runs one transaction, as the Go store's Reserve: it inserts
   * the reservation (nothing when the id is taken: the stored one is
   * answered, a held one's version moved on), then conditional decrements
   * in item id order. Under READ COMMITTED a concurrent UPDATE waits for
   * the row lock and re-checks stock >= quantity on the committed row, and
   * a concurrent INSERT of the same id waits for the first to end.
   * @param {Reservation} r
   * @returns {Promise<{reservation: Reservation, existed: boolean}>}
   */
  async reserve(r) {
    return tx(this.pool, async (c) => {
      const ins = await c.query(
        `INSERT INTO reservations (${reservationColumns}) VALUES ($1, $2, $3, $4, 1) ON CONFLICT (id) DO NOTHING`,
        [r.id, JSON.stringify(r.reserved), HELD, r.createdAt.toString()],
      );
      if (ins.rowCount === 0) {
        await c.query(`UPDATE reservations SET version = version + 1 WHERE id = $1 AND status = $2`, [r.id, HELD]);
        const stored = await getReservation(c, r.id);
        return { reservation: stored, existed: true };
      }
      const short = await decrement(c, r.reserved);
      if (short.length > 0) throw new OutOfStock(short); // rolls the insert back
      return { reservation: { ...r, status: HELD, version: 1 }, existed: false };
    });
  }

  /**
   * release runs one transaction: a compare-and-set of the reservation
   * from held (at the version, when given) to released, then increments
   * in item id order; an item deleted since is skipped, a stock that would
   * pass the largest integer rolls the whole release back.
   * @param {string} id
   * @param {number} version
   * @returns {Promise<{reservation: Reservation, released: boolean}>}
   */
  async release(id, version) {
    return tx(this.pool, async (c) => {
      let query = `UPDATE reservations SET status = $1 WHERE id = $2 AND status = $3`;
      /** @type {unknown[]} */
      const args = [RELEASED, id, HELD];
      if (version !== 0) {
        args.push(version);
        query += ` AND version = $4`;
      }
      const upd = await c.query(`${query} RETURNING ${reservationColumns}`, args);
      if (upd.rowCount === 0) {
        const stored = await getReservation(c, id);
        if (stored.status === HELD) throw new ReservationChanged(stored); // held, so at another version
        return { reservation: stored, released: false };
      }
      const r = toReservation(upd.rows[0]);
      for (const l of byItemID(r.reserved)) {
        const inc = await c.query(`UPDATE items SET stock = stock + $1 WHERE id = $2 AND stock <= $3`, [l.quantity, l.item_id, MAX_INT - l.quantity]);
        if (inc.rowCount === 1) continue;
        const exists = await c.query(`SELECT 1 FROM items WHERE id = $1`, [l.item_id]);
        if (exists.rowCount === 0) continue; // deleted since: nothing to put back into
        throw new Overflow(l);
      }
      return { reservation: r, released: true };
    });
  }

  /** @param {string} id */
  async getReservation(id) {
    return getReservation(this.pool, id);
  }

  /** @param {{status: string, after: string, limit: number}} q */
  async listReservations(q) {
    let query = `SELECT ${reservationColumns} FROM reservations WHERE id > $1`;
    /** @type {unknown[]} */
    const args = [q.after];
    if (q.status !== "") {
      args.push(q.status);
      query += ` AND status = $${args.length}`;
    }
    args.push(q.limit);
    query += ` ORDER BY id LIMIT $${args.length}`;
    const r = await this.pool.query(query, args);
    return r.rows.map(toReservation);
  }
}

/**
 * @param {Pool | PoolClient} c
 * @param {Key} k
 * @returns {Promise<import("../lib/once.js").KeyRecord | null>}
 */
async function applied(c, k) {
  const r = await c.query(`SELECT fingerprint, result FROM ${KEYS_TABLE} WHERE subject = $1 AND idem_key = $2`, [k.subject, k.id]);
  if (r.rowCount === 0) return null;
  return { fingerprint: r.rows[0].fingerprint, result: r.rows[0].result };
}

/**
 * @param {Pool | PoolClient} c
 * @param {string} id
 */
async function getReservation(c, id) {
  const r = await c.query(`SELECT ${reservationColumns} FROM reservations WHERE id = $1`, [id]);
  if (r.rowCount === 0) throw new NoReservation();
  return toReservation(r.rows[0]);
}

/**
 * decrement takes the lines' stock in c's transaction, in item id order,
 * and returns the shortages in the lines' order; with any, the
 * transaction must roll back. After the first shortage the other lines
 * are only read, to report every shortage.
 * @param {PoolClient} c
 * @param {Line[]} lines
 * @returns {Promise<Shortage[]>}
 */
async function decrement(c, lines) {
  /** @type {Map<string, number>} */
  const short = new Map();
  for (const l of byItemID(lines)) {
    let failed = false;
    if (short.size === 0) {
      const r = await c.query(`UPDATE items SET stock = stock - $1 WHERE id = $2 AND stock >= $3`, [l.quantity, l.item_id, l.quantity]);
      if (r.rowCount === 1) continue;
      failed = true;
    }
    const r = await c.query(`SELECT stock FROM items WHERE id = $1`, [l.item_id]);
    const stock = r.rowCount === 0 ? 0 : Number(r.rows[0].stock);
    // The line whose decrement failed is short even if a restock
    // committed since: it was not decremented.
    if (failed || stock < l.quantity) short.set(l.item_id, stock);
  }
  return lines.filter((l) => short.has(l.item_id)).map((l) => ({ item_id: l.item_id, requested: l.quantity, in_stock: /** @type {number} */ (short.get(l.item_id)) }));
}
