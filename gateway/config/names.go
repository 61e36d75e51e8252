package config

import (
	"regexp"
	"strings"
)

var (
	// segmentRE is a resource, version, service or action path segment.
	segmentRE = regexp.MustCompile(`^[a-z0-9_-]+$`)
	// actionRE is an action name; it is the rule the socket server
	// enforces when an action is registered.
	actionRE = regexp.MustCompile(`^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$`)
	// reasonRE is an error reason (details "reason"), e.g. card_declined.
	reasonRE = regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
)

// segmentRule says what segmentRE accepts, for error messages.
const segmentRule = `lowercase letters, digits, "-" and "_"`

// isSegment reports whether s may be a path segment of the REST API.
func isSegment(s string) bool { return segmentRE.MatchString(s) }

// isAction reports whether s is an UPPER_SNAKE_CASE action name.
func isAction(s string) bool { return actionRE.MatchString(s) }

// upperName is a name as it appears in an action: upper case, with every
// character other than a letter or digit replaced by "_" ("line-items"
// becomes "LINE_ITEMS").
func upperName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			return r
		}
		return '_'
	}, s)
}

// singular is a resource name without its plural ending: "categories"
// becomes "category", "addresses" "address", "boxes" "box", "users"
// "user". Names the rules get wrong take an explicit singular in the
// configuration.
func singular(plural string) string {
	switch {
	case strings.HasSuffix(plural, "ies") && len(plural) > len("ies"):
		return strings.TrimSuffix(plural, "ies") + "y"
	case strings.HasSuffix(plural, "ses"), strings.HasSuffix(plural, "xes"):
		return strings.TrimSuffix(plural, "es")
	}
	return strings.TrimSuffix(plural, "s")
}
