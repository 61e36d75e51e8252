package config

import (
	"slices"
	"strings"
)

// defaultEventsRoot is events.root when the document sets none: the
// services' own (eventlog.DefaultRoot).
const defaultEventsRoot = "streamgate.events"

// maxEventsReplicas is JetStream's own bound on a stream's replicas.
const maxEventsReplicas = 5

// eventsBlock reads the events block, with the loader's checks.
type eventsBlock struct{ l *loader }

// read checks the events block; nil when the document has none. Read
// after versions: the default windows are their resources'.
func (b eventsBlock) read(v val[yamlEvents]) *Events {
	l := b.l
	if !v.Set {
		return nil
	}
	y := v.V
	e := &Events{Root: defaultEventsRoot, Replicas: int(l.between(y.Replicas, maxEventsReplicas, 1))}
	if !y.NATSURL.Set {
		l.addf(v.at, "nats_url is required")
	} else if y.NATSURL.OK {
		e.NATSURL = natsURL(l.problems, y.NATSURL)
	}
	if y.Root.Set && y.Root.OK {
		if r := y.Root.V; strings.ContainsAny(r, "*> \t\r\n") || strings.HasPrefix(r, ".") || strings.HasSuffix(r, ".") || strings.Contains(r, "..") {
			l.addf(y.Root.at, "expected NATS subject tokens without wildcards, e.g. streamgate.events")
		} else {
			e.Root = r
		}
	}
	if !y.Windows.Set {
		e.Windows = b.defaultWindows()
		return e
	}
	if y.Windows.OK && len(y.Windows.V) == 0 {
		l.addf(y.Windows.at, "lists no windows; leave it out for one per resource")
	}
	lines := map[string]int{}
	for _, w := range y.Windows.V {
		ew := EventWindow{MaxAge: l.duration(w.MaxAge, 0, 0, DefaultEventsMaxAge), MaxBytes: l.between(w.MaxBytes, 1<<50, DefaultEventsMaxBytes)}
		switch {
		case !w.Prefix.Set:
			l.addf(w.At, "prefix is required")
			continue
		case !w.Prefix.OK:
			continue
		case !topicPrefix(w.Prefix.V):
			l.addf(w.Prefix.at, `expected topic segments separated by "/", without "*" or whitespace, e.g. orders`)
			continue
		}
		ew.Prefix = w.Prefix.V
		for other, line := range lines {
			if covers(other, ew.Prefix) || covers(ew.Prefix, other) {
				l.addf(w.Prefix.at, "windows %q and %q overlap (the other at line %d): a topic has one window", other, ew.Prefix, line)
			}
		}
		lines[ew.Prefix] = w.Prefix.line()
		e.Windows = append(e.Windows, ew)
	}
	return e
}

// defaultWindows is one window per resource name of every version, with
// the default limits.
func (b eventsBlock) defaultWindows() []EventWindow {
	var names []string
	for _, v := range b.l.cfg.Versions {
		for name := range v.Resources {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	out := make([]EventWindow, 0, len(names))
	for _, name := range names {
		out = append(out, EventWindow{Prefix: name, MaxAge: DefaultEventsMaxAge, MaxBytes: DefaultEventsMaxBytes})
	}
	return out
}

// topicPrefix reports whether p is whole topic segments: non-empty,
// separated by "/", without "*" or whitespace.
func topicPrefix(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == "" || strings.ContainsAny(seg, "* \t\r\n") {
			return false
		}
	}
	return len(p) <= 256
}

// covers reports whether prefix is the start of topic in whole segments.
func covers(prefix, topic string) bool {
	return topic == prefix || strings.HasPrefix(topic, prefix+"/")
}
