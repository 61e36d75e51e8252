package wire

import (
	"strings"
	"unicode/utf8"

	"github.com/streamgate/streamgate/status"
)

// maxTopic bounds a topic's length in bytes.
const maxTopic = 256

// CheckTopic validates a topic: segments separated by "/", none empty.
// With pattern set, the last segment may be "*" (every topic below the
// segments before it; "*" alone: every topic); "*" appears nowhere else.
func CheckTopic(topic string, pattern bool) *status.Error {
	if topic == "" || len(topic) > maxTopic {
		return status.Errorf(status.CodeInvalidArgument, "a topic has 1 to %d bytes", maxTopic)
	}
	if !utf8.ValidString(topic) {
		return status.Errorf(status.CodeInvalidArgument, "a topic is UTF-8 text")
	}
	segs := strings.Split(topic, "/")
	for i, s := range segs {
		switch {
		case s == "":
			return status.Errorf(status.CodeInvalidArgument, "topic %q has an empty segment", topic)
		case s == "*" && pattern && i == len(segs)-1:
		case strings.ContainsAny(s, "* \t\r\n"):
			return status.Errorf(status.CodeInvalidArgument, "topic %q: \"*\" is only a whole last segment of a subscription, and topics have no spaces", topic)
		}
	}
	return nil
}

// TopicMatches reports whether a topic falls under a subscription's topic
// or pattern.
func TopicMatches(pattern, topic string) bool {
	if pattern == topic || pattern == "*" {
		return true
	}
	prefix, ok := strings.CutSuffix(pattern, "*")
	return ok && strings.HasPrefix(topic, prefix)
}
