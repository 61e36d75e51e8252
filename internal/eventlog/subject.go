package eventlog

import (
	"strings"
	"unicode/utf8"

	"github.com/streamgate/streamgate/status"
)

// maxTopicBytes bounds a topic's length, as docs/protocol.md §3.4 does.
const maxTopicBytes = 256

// checkTopic applies the topic rules of docs/protocol.md §3.4 to a
// topic events are published on or watched (never a pattern): 1 to 256
// bytes of UTF-8, segments separated by "/", none empty, no "*" and no
// whitespace.
func checkTopic(topic string) error {
	if topic == "" || len(topic) > maxTopicBytes || !utf8.ValidString(topic) {
		return status.Errorf(status.CodeInvalidArgument, "an event topic is 1 to %d bytes of UTF-8", maxTopicBytes)
	}
	for seg := range strings.SplitSeq(topic, "/") {
		if seg == "" || strings.ContainsAny(seg, "* \t\r\n") {
			return status.Errorf(status.CodeInvalidArgument, "event topic %q: segments are non-empty, without \"*\" or whitespace", topic)
		}
	}
	return nil
}

// subjectTokens turns a topic's segments into NATS subject tokens: "/"
// becomes ".", and every byte a token cannot hold literally — ".", the
// wildcards "*" and ">", whitespace and control bytes, and "%" itself —
// becomes "%" and two upper-case hex digits, as in a URL. The mapping is
// one to one, so two topics never share a subject. Bytes of multi-byte
// UTF-8 characters pass unchanged (NATS subjects are UTF-8).
func subjectTokens(topic string) string {
	var b strings.Builder
	b.Grow(len(topic) + 8)
	for i := range len(topic) {
		c := topic[i]
		switch {
		case c == '/':
			b.WriteByte('.')
		case c == '.' || c == '*' || c == '>' || c == '%' || c <= ' ' || c == 0x7f:
			const hex = "0123456789ABCDEF"
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0x0f])
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// streamSuffix turns a window's prefix into the end of a stream name,
// which cannot hold ".", "/", "\\", "*", ">" or whitespace: the subject
// tokens with "." as "_" ("_" itself escaped first, so the mapping stays
// one to one) and "\\" escaped.
func streamSuffix(prefix string) string {
	tokens := subjectTokens(prefix)
	var b strings.Builder
	for i := range len(tokens) {
		switch c := tokens[i]; c {
		case '.':
			b.WriteByte('_')
		case '_':
			b.WriteString("%5F")
		case '\\':
			b.WriteString("%5C")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// covers reports whether prefix, a whole number of a topic's segments,
// is the start of topic (or topic itself).
func covers(prefix, topic string) bool {
	return topic == prefix || strings.HasPrefix(topic, prefix+"/")
}
