// Keys a service accepts (docs/protocol.md §2), as the Go runtime's Keyring
// (services/socket/keys.go): a caller opens a stream with gRPC metadata
// `authorization: Bearer SECRET`; the secret's SHA-256 selects the key.

import { createHash, timingSafeEqual } from "node:crypto";
import { Codes, SocketError } from "./errors.js";

/**
 * @typedef {object} Key
 * @property {string} name identifies the key; the principal's subject when the key does not delegate
 * @property {string} [secret] the key itself; set secret or hash, not both
 * @property {string} [hash] "sha256:" and the hex digest of the secret (see hashKey)
 * @property {boolean} [delegate] may name another principal in a request's meta (the gateway)
 * @property {string[]} [actions] when not empty, the only actions the key may call
 * @property {string[]} [roles] the key's roles when the key itself is the principal
 */

/**
 * @typedef {object} KeyEntry
 * @property {string} name
 * @property {boolean} delegate
 * @property {string[]} roles
 * @property {Set<string> | null} actions null: every action
 * @property {string} digest the secret's SHA-256, hex
 */

/**
 * hashKey returns the form of a secret that Key.hash takes.
 * @param {string} secret
 * @returns {string}
 */
export function hashKey(secret) {
  return "sha256:" + createHash("sha256").update(secret, "utf8").digest("hex");
}

/** Keyring holds the keys a server accepts. */
export class Keyring {
  /** @param {Key[]} keys */
  constructor(keys) {
    if (!Array.isArray(keys) || keys.length === 0) {
      throw new TypeError("streamgate: keys: give at least one key");
    }
    /** @type {Map<string, KeyEntry>} by hex digest */
    this.byHash = new Map();
    /** @type {Set<string>} */
    const names = new Set();
    for (const key of keys) {
      const { digest, entry } = keyEntry(key);
      if (names.has(entry.name)) {
        throw new TypeError(`streamgate: key "${entry.name}": name already in use`);
      }
      if (this.byHash.has(digest)) {
        throw new TypeError(`streamgate: key "${entry.name}": the same secret is already in use`);
      }
      names.add(entry.name);
      this.byHash.set(digest, entry);
    }
  }

  /**
   * lookup finds the key presented in a call's metadata, or throws an
   * UNAUTHENTICATED SocketError.
   * @param {import("@grpc/grpc-js").Metadata} md
   * @returns {KeyEntry}
   */
  lookup(md) {
    const vals = md.get("authorization");
    if (vals.length === 0) {
      throw new SocketError(Codes.UNAUTHENTICATED, `missing "authorization" metadata: send "Bearer KEY"`);
    }
    const v = String(vals[0]);
    const sp = v.indexOf(" ");
    const secret = sp < 0 ? "" : v.slice(sp + 1);
    if (sp < 0 || v.slice(0, sp).toLowerCase() !== "bearer" || secret === "") {
      throw new SocketError(Codes.UNAUTHENTICATED, `malformed "authorization" metadata: want "Bearer KEY"`);
    }
    const sum = createHash("sha256").update(secret, "utf8").digest();
    const e = this.byHash.get(sum.toString("hex"));
    if (!e || !timingSafeEqual(Buffer.from(e.digest, "hex"), sum)) {
      throw new SocketError(Codes.UNAUTHENTICATED, "unknown or revoked key");
    }
    return e;
  }
}

/**
 * @param {Key} key
 * @returns {{digest: string, entry: KeyEntry}}
 */
function keyEntry(key) {
  if (!key || typeof key.name !== "string" || key.name === "") {
    throw new TypeError("streamgate: key without a name");
  }
  let digest;
  if (key.secret && key.hash) {
    throw new TypeError(`streamgate: key "${key.name}": set secret or hash, not both`);
  } else if (key.secret) {
    digest = createHash("sha256").update(String(key.secret), "utf8").digest("hex");
  } else if (key.hash) {
    const m = /^sha256:([0-9a-fA-F]{64})$/.exec(String(key.hash));
    if (!m) {
      throw new TypeError(`streamgate: key "${key.name}": hash must be "sha256:" and 64 hex digits`);
    }
    digest = m[1].toLowerCase();
  } else {
    throw new TypeError(`streamgate: key "${key.name}": no secret or hash`);
  }
  const actions = key.actions && key.actions.length > 0 ? new Set(key.actions) : null;
  return {
    digest,
    entry: { name: key.name, delegate: !!key.delegate, roles: [...(key.roles ?? [])], actions, digest },
  };
}

/**
 * mayCall reports whether the key may call the action.
 * @param {KeyEntry} key
 * @param {string} action
 */
export function mayCall(key, action) {
  return key.actions === null || key.actions.has(action);
}
