// The hot frames of a stream, decoded and encoded by hand: a request or a
// cancel coming in, an answer in result_raw going out. Everything else
// (and any frame the fast path is not sure of) goes through
// @bufbuild/protobuf's reflective codec, so the messages are the same
// either way; test/frames.test.js checks that on random frames.

const REQUEST = "streamgate.socket.v1.Request";
const CONNECT_REQUEST = "streamgate.socket.v1.ConnectRequest";
const CANCEL = "streamgate.socket.v1.Cancel";
const META = "streamgate.socket.v1.Meta";
const PRINCIPAL = "streamgate.socket.v1.Principal";

// Wire types.
const VARINT = 0;
const LEN = 2;

/** Proto3 strings must be UTF-8; like the reflective codec, invalid text is refused. */
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Thrown (and caught in decodeConnectRequest) when the fast path gives the frame up. */
const GIVE_UP = new Error("streamgate: frame left to the reflective codec");

/** Reader walks one buffer; every method throws GIVE_UP on what it does not handle. */
class Reader {
  /** @param {Uint8Array} buf */
  constructor(buf) {
    this.buf = buf;
    /** The same bytes as a Buffer, whose latin1 text is ASCII's quickly. */
    this.text = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
    this.pos = 0;
  }

  /**
   * varint reads a varint below 2^53 as a number.
   * @returns {number}
   */
  varint() {
    const buf = this.buf;
    let n = 0;
    let mul = 1;
    for (let i = 0; i < 8; i++) {
      if (this.pos >= buf.length) {
        throw GIVE_UP;
      }
      const b = buf[this.pos++];
      if (i === 7 && b >= 16) {
        throw GIVE_UP; // 53 bits or more: left to the reflective codec
      }
      n += (b & 0x7f) * mul;
      if (b < 0x80) {
        return n;
      }
      mul *= 128;
    }
    throw GIVE_UP;
  }

  /**
   * end reads a length prefix and returns where the field ends.
   * @returns {number}
   */
  end() {
    const len = this.varint();
    const end = this.pos + len;
    if (end > this.buf.length) {
      throw GIVE_UP;
    }
    return end;
  }

  /** @returns {Uint8Array} a view, as the reflective codec returns */
  bytes() {
    const end = this.end();
    const b = this.buf.subarray(this.pos, end);
    this.pos = end;
    return b;
  }

  /** @returns {string} */
  string() {
    const end = this.end();
    const buf = this.buf;
    let ascii = true;
    for (let i = this.pos; i < end; i++) {
      if (buf[i] > 0x7f) {
        ascii = false;
        break;
      }
    }
    let s;
    if (ascii) {
      s = this.text.toString("latin1", this.pos, end);
    } else {
      try {
        s = utf8.decode(buf.subarray(this.pos, end));
      } catch {
        throw GIVE_UP;
      }
    }
    this.pos = end;
    return s;
  }
}

/**
 * decodeConnectRequest decodes a request or cancel frame as
 * fromBinary(ConnectRequestSchema, buf) does, or returns null for any
 * other frame, and for one it is not sure of (a field twice, an unknown
 * field, a body as a Value, invalid UTF-8, a malformed varint...).
 * @param {Uint8Array} buf
 * @returns {any}
 */
export function decodeConnectRequest(buf) {
  try {
    const r = new Reader(buf);
    if (r.pos >= buf.length) {
      return null;
    }
    const tag = r.varint();
    let frame;
    if (tag === ((1 << 3) | LEN)) {
      frame = { case: "request", value: request(r, r.end()) };
    } else if (tag === ((2 << 3) | LEN)) {
      frame = { case: "cancel", value: cancel(r, r.end()) };
    } else {
      return null;
    }
    if (r.pos !== buf.length) {
      return null; // another field, or the frame again
    }
    return { $typeName: CONNECT_REQUEST, frame };
  } catch (e) {
    if (e === GIVE_UP) {
      return null;
    }
    throw e;
  }
}

/**
 * @param {Reader} r
 * @param {number} end
 */
function request(r, end) {
  // Like the reflective codec, a message field absent is no property at all.
  /** @type {any} */
  const m = {
    $typeName: REQUEST,
    id: 0n,
    action: "",
    resourceId: "",
    /** @type {{case: undefined} | {case: "bodyRaw", value: Uint8Array}} */
    payload: { case: undefined },
    timeoutMs: 0,
  };
  let seen = 0;
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    if (field > 7 || seen & (1 << field)) {
      throw GIVE_UP;
    }
    seen |= 1 << field;
    switch (tag) {
      case (1 << 3) | VARINT:
        m.id = BigInt(r.varint());
        break;
      case (2 << 3) | LEN:
        m.action = r.string();
        break;
      case (3 << 3) | LEN:
        m.resourceId = r.string();
        break;
      case (4 << 3) | LEN:
        m.payload = { case: "bodyRaw", value: r.bytes() };
        break;
      case (6 << 3) | LEN:
        m.meta = meta(r, r.end());
        break;
      case (7 << 3) | VARINT: {
        const t = r.varint();
        if (t > 0xffffffff) {
          throw GIVE_UP;
        }
        m.timeoutMs = t;
        break;
      }
      default:
        throw GIVE_UP; // body as a Value, an unknown field, another wire type
    }
  }
  if (r.pos !== end) {
    throw GIVE_UP;
  }
  return m;
}

/** META_PRINCIPAL is the field number of Meta's principal, a message. */
const META_PRINCIPAL = 2;

/** META_STRINGS names Meta's other fields, all strings, by field number. */
const META_STRINGS = ["", "apiVersion", "", "traceparent", "tracestate", "idempotencyKey", "requestId", "readEpoch"];

/**
 * @param {Reader} r
 * @param {number} end
 */
function meta(r, end) {
  /** @type {any} */
  const m = {
    $typeName: META,
    apiVersion: "",
    traceparent: "",
    tracestate: "",
    idempotencyKey: "",
    requestId: "",
    readEpoch: "",
  };
  let seen = 0;
  while (r.pos < end) {
    const tag = r.varint();
    const field = tag >>> 3;
    if ((tag & 7) !== LEN || field < 1 || field > 7 || seen & (1 << field)) {
      throw GIVE_UP;
    }
    seen |= 1 << field;
    if (field === META_PRINCIPAL) {
      m.principal = principal(r, r.end());
    } else {
      m[META_STRINGS[field]] = r.string();
    }
  }
  if (r.pos !== end) {
    throw GIVE_UP;
  }
  return m;
}

/**
 * @param {Reader} r
 * @param {number} end
 */
function principal(r, end) {
  /** @type {string[]} */
  const roles = [];
  const m = { $typeName: PRINCIPAL, subject: "", roles };
  let subject = false;
  while (r.pos < end) {
    const tag = r.varint();
    if (tag === ((1 << 3) | LEN) && !subject) {
      subject = true;
      m.subject = r.string();
    } else if (tag === ((2 << 3) | LEN)) {
      m.roles.push(r.string());
    } else {
      throw GIVE_UP;
    }
  }
  if (r.pos !== end) {
    throw GIVE_UP;
  }
  return m;
}

/**
 * @param {Reader} r
 * @param {number} end
 */
function cancel(r, end) {
  const m = { $typeName: CANCEL, id: 0n };
  if (r.pos < end) {
    if (r.varint() !== ((1 << 3) | VARINT)) {
      throw GIVE_UP;
    }
    m.id = BigInt(r.varint());
  }
  if (r.pos !== end) {
    throw GIVE_UP;
  }
  return m;
}

/**
 * encodeRawAnswer encodes ConnectResponse{response: Response{id, ok: true,
 * result_raw: json, replayed}} as toBinary(ConnectResponseSchema, ...)
 * does, or returns null when it would be over limit bytes.
 * @param {bigint} id
 * @param {string} json
 * @param {boolean} replayed
 * @param {number} limit
 * @returns {Buffer | null}
 */
export function encodeRawAnswer(id, json, replayed, limit) {
  const jsonLen = Buffer.byteLength(json, "utf8");
  const idLen = id === 0n ? 0 : 1 + bigVarintSize(id);
  const inner = idLen + 2 + 1 + varintSize(jsonLen) + jsonLen + (replayed ? 2 : 0);
  const total = 1 + varintSize(inner) + inner;
  if (total > limit) {
    return null;
  }
  const buf = Buffer.allocUnsafe(total);
  let pos = 0;
  buf[pos++] = (1 << 3) | LEN;
  pos = writeVarint(buf, pos, inner);
  if (idLen > 0) {
    buf[pos++] = (1 << 3) | VARINT;
    pos = writeBigVarint(buf, pos, id);
  }
  buf[pos++] = (2 << 3) | VARINT;
  buf[pos++] = 1;
  buf[pos++] = (3 << 3) | LEN;
  pos = writeVarint(buf, pos, jsonLen);
  pos += buf.write(json, pos, jsonLen, "utf8");
  if (replayed) {
    buf[pos++] = (6 << 3) | VARINT;
    buf[pos++] = 1;
  }
  return buf;
}

/** @param {number} n below 2^53 */
function varintSize(n) {
  let size = 1;
  while (n >= 128) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

/**
 * @param {Buffer} buf
 * @param {number} pos
 * @param {number} n below 2^53
 */
function writeVarint(buf, pos, n) {
  while (n >= 128) {
    buf[pos++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[pos++] = n;
  return pos;
}

/** @param {bigint} n a uint64 */
function bigVarintSize(n) {
  if (n <= 0x1fffffffffffffn) {
    return varintSize(Number(n));
  }
  let size = 1;
  while (n >= 128n) {
    n >>= 7n;
    size++;
  }
  return size;
}

/**
 * @param {Buffer} buf
 * @param {number} pos
 * @param {bigint} n a uint64
 */
function writeBigVarint(buf, pos, n) {
  if (n <= 0x1fffffffffffffn) {
    return writeVarint(buf, pos, Number(n));
  }
  while (n >= 128n) {
    buf[pos++] = Number(n & 0x7fn) | 0x80;
    n >>= 7n;
  }
  buf[pos++] = Number(n);
  return pos;
}
