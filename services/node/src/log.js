// Logging. The library does not print on its own: it calls the logger
// given to createServer, a function of (level, msg, fields). The default
// is silent; jsonLogger writes one JSON object per line, as Go's
// slog.JSONHandler does.

/** @typedef {import("../index.js").Logger} Logger */

/** @type {Logger} */
export const silentLogger = () => {};

/**
 * jsonLogger returns a logger that writes JSON lines
 * {"time","level","msg",...fields} to out (default: stderr).
 * @param {{write(s: string): unknown}} [out]
 * @returns {Logger}
 */
export function jsonLogger(out = process.stderr) {
  return (level, msg, fields) => {
    let line;
    try {
      line = JSON.stringify({ time: new Date().toISOString(), level: level.toUpperCase(), msg, ...fields });
    } catch {
      line = JSON.stringify({ time: new Date().toISOString(), level: level.toUpperCase(), msg });
    }
    out.write(line + "\n");
  };
}
