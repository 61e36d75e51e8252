package eventlog

import (
	"strings"
	"testing"
)

func TestSubjectTokens(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ topic, want string }{
		{"orders/o1", "orders.o1"},
		{"orders", "orders"},
		{"orders/o.1", "orders.o%2E1"},
		{"a>b/c%d", "a%3Eb.c%25d"},
		{"items/ünï", "items.ünï"},
		{"x/\x01\x7f", "x.%01%7F"},
	} {
		t.Run(c.topic, func(t *testing.T) {
			t.Parallel()
			if got := subjectTokens(c.topic); got != c.want {
				t.Errorf("subjectTokens(%q) = %q, want %q", c.topic, got, c.want)
			}
		})
	}
}

func TestStreamSuffix(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ prefix, want string }{
		{"orders", "orders"},
		{"orders/eu", "orders_eu"},
		{"orders_eu", "orders%5Feu"},
		{`a\b.c`, "a%5Cb%2Ec"},
	} {
		t.Run(c.prefix, func(t *testing.T) {
			t.Parallel()
			if got := streamSuffix(c.prefix); got != c.want {
				t.Errorf("streamSuffix(%q) = %q, want %q", c.prefix, got, c.want)
			}
		})
	}
}

// FuzzSubjectTokens: a valid topic becomes a subject with one token per
// segment, none empty, none a wildcard, with no whitespace or "."
// inside; topics that differ get subjects that differ; a stream suffix
// holds none of the characters a stream name cannot.
func FuzzSubjectTokens(f *testing.F) {
	for _, seed := range []string{"orders/o1", "a.b/c>d", "%2E/.", "ü/ß", "a_b/c"} {
		f.Add(seed, seed+"x")
	}
	f.Fuzz(func(t *testing.T, topic, other string) {
		if checkTopic(topic) != nil {
			return
		}
		subject := subjectTokens(topic)
		tokens := strings.Split(subject, ".")
		if len(tokens) != strings.Count(topic, "/")+1 {
			t.Fatalf("%q → %q: %d tokens for %d segments", topic, subject, len(tokens), strings.Count(topic, "/")+1)
		}
		for _, tok := range tokens {
			if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
				t.Fatalf("%q → %q: token %q", topic, subject, tok)
			}
		}
		if checkTopic(other) == nil && other != topic && subjectTokens(other) == subject {
			t.Fatalf("%q and %q share the subject %q", topic, other, subject)
		}
		if s := streamSuffix(topic); strings.ContainsAny(s, `./\*> `+"\t\r\n") {
			t.Fatalf("%q: stream suffix %q", topic, s)
		}
		if checkTopic(other) == nil && other != topic && streamSuffix(other) == streamSuffix(topic) {
			t.Fatalf("%q and %q share the stream suffix %q", topic, other, streamSuffix(topic))
		}
	})
}
