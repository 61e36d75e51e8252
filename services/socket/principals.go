package socket

// Principal names the gateway and the services agree on.
const (
	// RoleAdmin is the role that may act on every user's resources and
	// manage the services' catalogues.
	RoleAdmin = "admin"
	// AnonymousSubject is the subject the gateway forwards for callers
	// without credentials; services treat it as not signed in.
	AnonymousSubject = "anonymous"
)
