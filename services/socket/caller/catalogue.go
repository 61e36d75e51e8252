package caller

import (
	"sync"
	"sync/atomic"
	"time"

	socketv1 "github.com/streamgate/streamgate/gen/streamgate/socket/v1"
)

// ActionInfo is what the client knows of an action from the services'
// Describe catalogues.
type ActionInfo struct {
	// Read actions change nothing: they may be retried, coalesced and cached.
	Read bool
	// Idempotent actions may be sent twice.
	Idempotent bool
	// Public reads answer every caller alike.
	Public bool
	// CacheTTL is how long a read's result may be cached; 0 means not.
	CacheTTL time.Duration
	// Versions are the API versions the action supports; none means all.
	Versions []string
	// Doc is the action's documentation.
	Doc string
}

// catalogue is what a client knows of the service's actions, from the
// instances' Describe answers.
type catalogue struct {
	named     string                                // WithServiceName's
	mu        sync.Mutex                            // serializes learn
	infos     atomic.Pointer[map[string]ActionInfo] // by action name
	learned   atomic.Bool                           // a Describe answered
	described atomic.Pointer[string]                // the service's name, from Describe
}

// action returns what the catalogue says of an action; ok is false before
// any instance described it.
func (k *catalogue) action(name string) (info ActionInfo, ok bool) {
	info, ok = (*k.infos.Load())[name]
	return info, ok
}

// learn records a Describe catalogue.
func (k *catalogue) learn(d *socketv1.DescribeResponse) {
	k.mu.Lock()
	defer k.mu.Unlock()
	next := map[string]ActionInfo{}
	for a, v := range *k.infos.Load() {
		next[a] = v
	}
	for _, a := range d.GetActions() {
		info := next[a.GetName()]
		info.Read = a.GetKind() == socketv1.ActionKind_ACTION_KIND_READ
		info.Idempotent = info.Idempotent || a.GetIdempotent()
		info.Public = a.GetPublic()
		info.CacheTTL = a.GetCacheTtl().AsDuration()
		info.Versions = a.GetVersions()
		info.Doc = a.GetDoc()
		next[a.GetName()] = info
	}
	k.infos.Store(&next)
	k.learned.Store(true)
	if name := d.GetService(); name != "" {
		k.described.Store(&name)
	}
}

// service returns the name of the service the client calls:
// WithServiceName's, else Describe's, else "".
func (k *catalogue) service() string {
	if k.named != "" {
		return k.named
	}
	if n := k.described.Load(); n != nil {
		return *n
	}
	return ""
}

// serviceName names the service in messages.
func (k *catalogue) serviceName() string {
	if s := k.service(); s != "" {
		return "service " + s
	}
	return "the service"
}
