// A request's cancellation, cheap until someone looks at it: most handlers
// never read ctx.signal, and an AbortController (an EventTarget) costs
// more to make than the rest of a small request's bookkeeping.

/**
 * Abort is an AbortController whose signal is made only when asked for:
 * abort(reason) and signal work as AbortController's do (the signal is
 * already aborted, with the reason, if it is made after the abort), and
 * the runtime itself listens with onAbort instead of an event listener.
 */
export class Abort {
  constructor() {
    this.aborted = false;
    /** @type {any} */
    this.reason = undefined;
    /** @type {AbortController | null} */
    this.ac = null;
    /** @type {(() => void)[] | null} */
    this.listeners = null;
  }

  /**
   * abort aborts once: the signal (if made) aborts and every listener is
   * called.
   * @param {any} reason
   */
  abort(reason) {
    if (this.aborted) {
      return;
    }
    this.aborted = true;
    this.reason = reason;
    this.ac?.abort(reason);
    const ls = this.listeners;
    this.listeners = null;
    if (ls) {
      for (const fn of ls) {
        fn();
      }
    }
  }

  /** @returns {AbortSignal} */
  get signal() {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.aborted) {
        this.ac.abort(this.reason);
      }
    }
    return this.ac.signal;
  }

  /**
   * onAbort calls fn once when abort is first called (never when it was
   * already); the function it returns stops that.
   * @param {() => void} fn
   * @returns {() => void}
   */
  onAbort(fn) {
    if (this.aborted) {
      return () => {};
    }
    (this.listeners ??= []).push(fn);
    return () => {
      const ls = this.listeners;
      const i = ls ? ls.indexOf(fn) : -1;
      if (ls && i >= 0) {
        ls.splice(i, 1);
      }
    };
  }
}
