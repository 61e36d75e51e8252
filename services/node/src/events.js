// Events (docs/protocol.md §10), as the Go runtime's events.go: a seq per
// topic from 1, subscriptions by topic or pattern, a bounded queue per
// stream with a gap marker after overflow, and visibility filtering for
// streams whose key may not delegate.

import { Codes, SocketError } from "./errors.js";

/** How many events wait for one stream before its events are dropped. */
export const EVENT_QUEUE = 256;

/** How many topics' seqs a server remembers before it starts again. */
const MAX_TOPIC_SEQS = 1 << 18;

/** The longest topic, in bytes. */
const MAX_TOPIC = 256;

/**
 * @typedef {object} Visibility
 * @property {boolean} [public] everyone who may read the object sees the event
 * @property {string[]} [subjects] principals with one of these subjects see it
 * @property {string[]} [roles] principals with one of these roles see it
 */

/**
 * checkTopic validates a topic: segments separated by "/", none empty;
 * with pattern set the last segment may be "*". It returns the problem as
 * a SocketError, or null.
 * @param {unknown} topic
 * @param {boolean} pattern
 * @returns {SocketError | null}
 */
export function checkTopic(topic, pattern) {
  if (typeof topic !== "string" || topic === "" || Buffer.byteLength(topic, "utf8") > MAX_TOPIC) {
    return new SocketError(Codes.INVALID_ARGUMENT, `a topic has 1 to ${MAX_TOPIC} bytes`);
  }
  if (!topic.isWellFormed()) {
    return new SocketError(Codes.INVALID_ARGUMENT, "a topic is UTF-8 text");
  }
  const segs = topic.split("/");
  for (let i = 0; i < segs.length; i++) {
    const s = segs[i];
    if (s === "") {
      return new SocketError(Codes.INVALID_ARGUMENT, `topic ${JSON.stringify(topic)} has an empty segment`);
    }
    if (s === "*" && pattern && i === segs.length - 1) {
      continue;
    }
    if (/[* \t\r\n]/.test(s)) {
      return new SocketError(
        Codes.INVALID_ARGUMENT,
        `topic ${JSON.stringify(topic)}: "*" is only a whole last segment of a subscription, and topics have no spaces`,
      );
    }
  }
  return null;
}

/**
 * topicMatches reports whether a topic falls under a subscription.
 * @param {string} sub a topic or pattern
 * @param {string} topic
 */
export function topicMatches(sub, topic) {
  if (sub === topic || sub === "*") {
    return true;
  }
  return sub.endsWith("*") && topic.startsWith(sub.slice(0, -1));
}

/**
 * allows reports whether a principal may see an event of this visibility.
 * @param {Visibility} vis
 * @param {{subject: string, roles: string[]}} p
 */
export function allows(vis, p) {
  if (vis.public || (vis.subjects ?? []).includes(p.subject)) {
    return true;
  }
  return (vis.roles ?? []).some((r) => p.roles.includes(r));
}

/**
 * A Subscriber is one stream's side of the events: its subscriptions, who
 * it may see events for, and its queue.
 * @typedef {object} Subscriber
 * @property {Set<string>} topics subscribed topics and patterns
 * @property {boolean} all the key may delegate: every event, whatever its visibility
 * @property {{subject: string, roles: string[]}} self otherwise: events this principal may see
 * @property {(frame: any) => boolean} offer queues an event frame; false when the queue is full
 */

/** Events are a server's topic seqs and subscribers. */
export class Events {
  constructor() {
    /** @type {Map<string, bigint>} the last seq per topic */
    this.seqs = new Map();
    /** @type {Set<Subscriber>} */
    this.subscribers = new Set();
  }

  /**
   * publish queues an event for every subscriber that may see it and
   * returns its seq.
   * @param {string} topic
   * @param {Uint8Array} data JSON
   * @param {Visibility} vis
   * @returns {bigint}
   */
  publish(topic, data, vis) {
    if (this.seqs.size >= MAX_TOPIC_SEQS && !this.seqs.has(topic)) {
      this.seqs.clear();
    }
    const seq = (this.seqs.get(topic) ?? 0n) + 1n;
    this.seqs.set(topic, seq);
    const visibility = { public: !!vis.public, subjects: [...(vis.subjects ?? [])], roles: [...(vis.roles ?? [])] };
    const frame = { frame: { case: "event", value: { topic, seq, data, visibility, gap: false } } };
    for (const sub of this.subscribers) {
      if (!sub.all && !allows(visibility, sub.self)) {
        continue;
      }
      for (const t of sub.topics) {
        if (topicMatches(t, topic)) {
          sub.offer(frame);
          break;
        }
      }
    }
    return seq;
  }
}

/** The frame of a gap marker: events were dropped for this stream. */
export const GAP_MARKER = { frame: { case: "event", value: { gap: true } } };
