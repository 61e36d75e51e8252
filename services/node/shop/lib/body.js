// Strict body decoding with the Go services' answers (socket.DecodeBody on
// encoding/json): a body is an object of known fields, matched as
// encoding/json matches them (exactly, else ignoring case); an unknown
// field is INVALID_ARGUMENT reason unknown_field; a value of the wrong type
// is INVALID_ARGUMENT `invalid body: field "F" must be T, got V` with
// details.field; null leaves a field unset, as it does in Go.
//
//	const In = struct("CreateInput", { name: str, price_cents: int64, stock: int64 });
//	const in = decode(In, req.body); // {name?: string, price_cents?: number, …}
//
// Integers are JavaScript numbers: beyond ±(2^53-1) they are refused
// (INVALID_ARGUMENT), where Go would take them up to ±(2^63-1).

import { SocketError, Codes, Reasons } from "@streamgate/service";

/**
 * A Type decodes one JSON value at a path (a dotted list of field names,
 * as encoding/json reports it) or throws a SocketError.
 * @typedef {{goName: string, decode: (v: unknown, path: string) => unknown}} Type
 */

/** The largest integer a field takes here. */
export const MAX_INT = Number.MAX_SAFE_INTEGER;

/**
 * kind names a JSON value as encoding/json's UnmarshalTypeError does.
 * @param {unknown} v
 */
function kind(v) {
  if (Array.isArray(v)) return "array";
  if (v === null) return "null";
  if (typeof v === "number") return `number ${formatNumber(v)}`;
  if (typeof v === "boolean") return "bool";
  return typeof v; // "string", "object"
}

/** @param {number} n */
function formatNumber(n) {
  return Number.isInteger(n) && Math.abs(n) < 1e21 ? n.toFixed(0) : String(n);
}

/**
 * typeError is encoding/json's UnmarshalTypeError as the Go runtime answers it.
 * @param {string} path
 * @param {string} goType
 * @param {unknown} v
 */
export function typeError(path, goType, v) {
  // encoding/json names the number only when it was decoding one.
  const numeric = goType === "int64" || goType === "int";
  const got = typeof v === "number" && numeric ? kind(v) : kind(v).split(" ")[0];
  return new SocketError(Codes.INVALID_ARGUMENT, `invalid body: field ${JSON.stringify(path)} must be ${goType}, got ${got}`, { field: path });
}

/** @type {Type} */
export const str = {
  goName: "string",
  decode(v, path) {
    if (typeof v !== "string") throw typeError(path, "string", v);
    return v;
  },
};

/**
 * integer is a Go integer type (int64, int) limited to safe JavaScript integers.
 * @param {string} goName
 * @returns {Type}
 */
function integer(goName) {
  return {
    goName,
    decode(v, path) {
      if (typeof v !== "number" || !Number.isInteger(v)) throw typeError(path, goName, v);
      if (!Number.isSafeInteger(v)) {
        throw new SocketError(Codes.INVALID_ARGUMENT, `invalid body: field ${JSON.stringify(path)} must be between ${-MAX_INT} and ${MAX_INT}`, {
          field: path,
        });
      }
      return v;
    },
  };
}

/** Go's int64. */
export const int64 = integer("int64");
/** Go's int. */
export const int = integer("int");

/**
 * raw takes any JSON value as it is (Go's json.RawMessage).
 * @type {Type}
 */
export const raw = { goName: "json.RawMessage", decode: (v) => v };

/**
 * list is a Go slice of elem.
 * @param {Type} elem
 * @returns {Type}
 */
export function list(elem) {
  const goName = "[]" + elem.goName;
  return {
    goName,
    decode(v, path) {
      if (!Array.isArray(v)) throw typeError(path, goName, v);
      // null elements decode to the zero value, as in Go.
      return v.map((e) => (e === null ? zero(elem) : elem.decode(e, path)));
    },
  };
}

/**
 * zero is a type's zero value: {} for structs, "" and 0 otherwise.
 * @param {Type} t
 */
function zero(t) {
  if (t === str) return "";
  if (t === int64 || t === int) return 0;
  if (t.goName.startsWith("[]")) return null;
  return t === raw ? null : {};
}

/**
 * struct is a Go struct with JSON fields; strict refuses fields it does not
 * have (DisallowUnknownFields), otherwise they are ignored. Fields decode
 * to an object holding only the fields given and not null.
 * @param {string} goName e.g. "inventory.Line"
 * @param {Record<string, Type>} fields
 * @param {{strict?: boolean}} [opts]
 * @returns {Type}
 */
export function struct(goName, fields, { strict = true } = {}) {
  const names = Object.keys(fields);
  return {
    goName,
    decode(v, path) {
      if (v === null || typeof v !== "object" || Array.isArray(v)) throw typeError(path, goName, v);
      /** @type {Record<string, unknown>} */
      const out = {};
      for (const [key, value] of Object.entries(v)) {
        const name = names.includes(key) ? key : names.find((n) => n.toLowerCase() === key.toLowerCase());
        if (name === undefined) {
          if (strict) {
            throw new SocketError(Codes.INVALID_ARGUMENT, `invalid body: unknown field ${JSON.stringify(key)}`, {
              field: key,
              reason: Reasons.UNKNOWN_FIELD,
            });
          }
          continue;
        }
        if (value === null) {
          delete out[name];
          continue;
        }
        out[name] = fields[name].decode(value, path === "" ? name : `${path}.${name}`);
      }
      return out;
    },
  };
}

/**
 * decode decodes a request body (parsed JSON; null when none) into t, a
 * struct: no body or null is an empty one.
 * @template T
 * @param {Type} t
 * @param {unknown} body
 * @returns {T}
 */
export function decode(t, body) {
  if (body === null || body === undefined) return /** @type {T} */ ({});
  return /** @type {T} */ (t.decode(body, ""));
}
