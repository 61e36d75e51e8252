// Package natswire is how the socket's frames travel over NATS, shared by
// the service side (natsserve) and the request library (caller): the
// subjects, the header that carries the key, and how an action's
// catalogue entry rides in its micro endpoint's metadata.
//
// A request is a NATS request whose data is a protobuf
// streamgate.socket.v1.Request frame, sent to Subject(service, action);
// its reply's data is the Response frame. Each service is a NATS micro
// service of the same name whose instances share QueueGroup; Describe is
// the micro service's INFO ($SRV.INFO.<name>).
package natswire

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/types/known/durationpb"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

const (
	// HeaderAuthorization carries "Bearer KEY" on every request.
	HeaderAuthorization = "Authorization"
	// QueueGroup is the queue group every instance's endpoints join, so a
	// request goes to one instance.
	QueueGroup = "streamgate"
	// MetaVersion is the micro service metadata key for the service's
	// build version (micro's own version must be SemVer).
	MetaVersion = "streamgate_version"
	// MetaInstance is the micro service metadata key for the instance.
	MetaInstance = "streamgate_instance"

	subjectPrefix = "streamgate."
)

// serviceName is what a micro service may be named.
var serviceName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// CheckService reports whether a service's name can name a micro service
// and a subject token.
func CheckService(name string) error {
	if !serviceName.MatchString(name) {
		return fmt.Errorf("service name %q cannot travel over NATS: want letters, digits, '-' and '_'", name)
	}
	if name == reservedService {
		return fmt.Errorf("service name %q cannot travel over NATS: its subjects (streamgate.%s.ACTION) are where events go", name, name)
	}
	return nil
}

// reservedService is the name no service may take over NATS: subjects
// under streamgate.events are the events' (eventlog.DefaultRoot).
const reservedService = "events"

// Subject is where requests for one action of a service go.
func Subject(service, action string) string {
	return subjectPrefix + service + "." + action
}

// semver is a SemVer version (micro requires one).
var semver = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

// MicroVersion is the version to give micro: the build version when it is
// SemVer (a leading "v" dropped), else 0.0.0 (the build version then
// travels in MetaVersion).
func MicroVersion(version string) string {
	v := strings.TrimPrefix(version, "v")
	if semver.MatchString(v) {
		return v
	}
	return "0.0.0"
}

// Endpoint metadata keys: one action's catalogue entry.
const (
	metaKind       = "kind"
	metaIdempotent = "idempotent"
	metaPublic     = "public"
	metaCacheTTL   = "cache_ttl"
	metaTimeout    = "timeout"
	metaVersions   = "versions"
	metaDoc        = "doc"
)

// EndpointMetadata is an action's catalogue entry as endpoint metadata.
func EndpointMetadata(a *socketv1.Action) map[string]string {
	kind := "write"
	if a.GetKind() == socketv1.ActionKind_ACTION_KIND_READ {
		kind = "read"
	}
	return map[string]string{
		metaKind:       kind,
		metaIdempotent: strconv.FormatBool(a.GetIdempotent()),
		metaPublic:     strconv.FormatBool(a.GetPublic()),
		metaCacheTTL:   a.GetCacheTtl().AsDuration().String(),
		metaTimeout:    a.GetTimeout().AsDuration().String(),
		metaVersions:   strings.Join(a.GetVersions(), ","),
		metaDoc:        a.GetDoc(),
	}
}

// Action is the catalogue entry that EndpointMetadata wrote; what does not
// parse is left at its zero value.
func Action(name string, md map[string]string) *socketv1.Action {
	a := &socketv1.Action{Name: name, Kind: socketv1.ActionKind_ACTION_KIND_WRITE, Doc: md[metaDoc]}
	if md[metaKind] == "read" {
		a.Kind = socketv1.ActionKind_ACTION_KIND_READ
	}
	a.Idempotent, _ = strconv.ParseBool(md[metaIdempotent])
	a.Public, _ = strconv.ParseBool(md[metaPublic])
	ttl, _ := time.ParseDuration(md[metaCacheTTL])
	a.CacheTtl = durationpb.New(ttl)
	timeout, _ := time.ParseDuration(md[metaTimeout])
	a.Timeout = durationpb.New(timeout)
	if v := md[metaVersions]; v != "" {
		a.Versions = strings.Split(v, ",")
	}
	return a
}

// EventsSubject is where a caller asks an instance of a service which
// events its key may receive (a Grant), before it subscribes to the
// service's events on their subjects. An instance answers it while it
// stores its events in JetStream; action names (upper case, no "$")
// never meet it.
func EventsSubject(service string) string {
	return subjectPrefix + service + ".$EVENTS"
}

// Grant answers a request on EventsSubject: the events the request's key
// may receive, as the service's keyring says, or the refusal.
type Grant struct {
	// Delegate: every event, whatever its visibility (the gateway's key).
	Delegate bool `json:"delegate,omitempty"`
	// Subject and Roles are the key's principal: without Delegate, the
	// events whose visibility allows it.
	Subject string   `json:"subject,omitempty"`
	Roles   []string `json:"roles,omitempty"`
	// Code and Message refuse the key (UNAUTHENTICATED,
	// PERMISSION_DENIED) when Code is set.
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	// Root is the root of the subjects the service's events are published
	// under ("" is eventlog.DefaultRoot), so a subscriber follows a
	// service that chose its own.
	Root string `json:"root,omitempty"`
}

// AskGrant asks an instance of service which events the key may receive;
// nil when none answers within ctx (no instance stores events yet) or the
// answer is unreadable.
func AskGrant(ctx context.Context, nc *nats.Conn, service, key string) *Grant {
	msg := nats.NewMsg(EventsSubject(service))
	if key != "" {
		msg.Header.Set(HeaderAuthorization, "Bearer "+key)
	}
	m, err := nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		return nil
	}
	var g Grant
	if json.Unmarshal(m.Data, &g) != nil {
		return nil
	}
	return &g
}
