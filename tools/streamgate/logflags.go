package main

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/streamgate/streamgate/gateway/observe"
	"github.com/streamgate/streamgate/internal/asyncwriter"
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

// logger returns a logger writing to w as the flags say, through an
// asynchronous writer (the access log's lines are written off the
// request's path, many in one write, and dropped and counted when w falls
// behind by asyncwriter.DefaultLimit bytes); the command's end writes out
// what is pending (closeLogs). Its handler is an observe.LogHandler: the
// gateway's access log writes its lines straight into the writer, in the
// very format slog's handler writes.
func (f *logFlags) logger(w io.Writer) *slog.Logger {
	aw := asyncwriter.New(w, asyncwriter.DefaultLimit)
	openLogs.mu.Lock()
	openLogs.writers = append(openLogs.writers, aw)
	openLogs.mu.Unlock()
	format := observe.LogText
	if f.format == "json" {
		format = observe.LogJSON
	}
	return slog.New(observe.NewLogHandler(aw, format, f.level))
}

// openLogs are the asynchronous writers of the loggers made so far.
var openLogs struct {
	mu      sync.Mutex
	writers []*asyncwriter.Writer
}

// closeLogs writes out and closes every logger's writer made so far;
// lines logged later (by a command of a test running beside) go straight
// to their destination.
func closeLogs() {
	openLogs.mu.Lock()
	writers := openLogs.writers
	openLogs.writers = nil
	openLogs.mu.Unlock()
	for _, w := range writers {
		_ = w.Close()
	}
}
