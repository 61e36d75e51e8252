// PostgreSQL for the shop's Node services, on the `pg` package (pure
// JavaScript), opened from the same DSN the Go services take
// (services/internal/sqldb): a postgres:// URL whose optional search_path
// parameter selects the schema.

import pg from "pg";

/**
 * openPool returns a pool of at most 16 connections (as sqldb.Open) to dsn.
 * @param {string} dsn
 * @returns {any} a pg Pool
 */
export function openPool(dsn) {
  const url = new URL(dsn);
  const searchPath = url.searchParams.get("search_path");
  url.searchParams.delete("search_path");
  /** @type {Record<string, unknown>} */
  const config = { connectionString: url.toString(), max: 16, connectionTimeoutMillis: 10_000 };
  if (searchPath) {
    config.options = `-c search_path=${searchPath}`;
  }
  const pool = new pg.Pool(config);
  // An idle connection the server cut is dropped by the pool; without a
  // listener its error would end the process.
  pool.on("error", () => {});
  return pool;
}

/**
 * isUniqueViolation reports whether e is a unique or primary key
 * constraint failure.
 * @param {unknown} e
 */
export function isUniqueViolation(e) {
  return /** @type {any} */ (e)?.code === "23505";
}

const UNREACHABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EPIPE", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);

/**
 * isUnreachable reports whether e says the database server cannot be
 * reached now (a failed connect, a refused, reset or cut connection), as
 * sqldb.IsUnreachable: an outage to retry later. A write that failed so
 * may or may not have committed.
 * @param {unknown} e
 */
export function isUnreachable(e) {
  const err = /** @type {any} */ (e);
  if (!err || typeof err !== "object") return false;
  if (UNREACHABLE.has(err.code)) return true;
  // The server shutting down (class 57P: operator intervention) cuts connections.
  if (typeof err.code === "string" && err.code.startsWith("57P")) return true;
  const msg = String(err.message ?? "");
  return /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/.test(msg);
}
