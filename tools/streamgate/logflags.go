package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// logFlags are the logging flags every serving command (stack, gateway,
// service) takes: -log-format text|json and -log-level
// debug|info|warn|error.
type logFlags struct {
	format string
	level  slog.Level
}

// addLogFlags declares the logging flags on fs; a bad value fails the
// parse with a one-line error.
func addLogFlags(fs *flag.FlagSet) *logFlags {
	f := &logFlags{format: "text", level: slog.LevelInfo}
	fs.Func("log-format", "log lines as text or json (default text)", func(s string) error {
		if s != "text" && s != "json" {
			return fmt.Errorf("want text or json, not %q", s)
		}
		f.format = s
		return nil
	})
	fs.Func("log-level", "the least severe lines logged: debug, info, warn or error (default info; info logs one line per request)", func(s string) error {
		levels := map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError}
		l, ok := levels[strings.ToLower(s)]
		if !ok {
			return fmt.Errorf("want debug, info, warn or error, not %q", s)
		}
		f.level = l
		return nil
	})
	return f
}

// logger returns a logger writing to w as the flags say.
func (f *logFlags) logger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: f.level}
	if f.format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
