// Package users is the example users service: accounts with a name, a
// unique email and a status, and the CHECK_PURCHASABLE and
// REQUIRE_PURCHASABLE steps the gateway runs before an order is paid.
//
//	db, _ := sqldb.Open(ctx, sqldb.SQLite, "data/users.db")
//	st, _ := users.NewSQLStore(ctx, db) // or users.NewMemoryStore()
//	srv, _ := socket.NewServer(socket.Config{Name: "users"}, socket.WithKeys(keys))
//	_ = users.Register(srv, st)
//	_ = srv.Serve(ctx, lis)
//
// The caller is socket.MetaFrom(ctx).Principal; "admin" is the role that
// may act on any user. Everyone else acts only on the user whose id is
// their subject, and only once signed in (a subject other than "" and
// "anonymous"):
//
//	GET_USER id             admin, or the user itself
//	LIST_USERS              admin; ListInput → Page
//	CREATE_USER             any signed-in caller; CreateInput → User
//	UPDATE_USER id          admin, or the user itself without status; Patch → User
//	DELETE_USER id          admin; returns the deleted User
//	CHECK_PURCHASABLE id    admin, or the user itself; → Purchasable
//	REQUIRE_PURCHASABLE id  admin, or the user itself; → Purchasable, FAILED_PRECONDITION if not
//
// Under an idempotency key (the gateway's derived key, socket.Meta),
// CREATE_USER, UPDATE_USER and DELETE_USER apply once: a retry answers
// the first result, marked replayed; the key with another request is
// CONFLICT, reason idempotency_key_reused.
//
// Another user's account answers exactly like a missing one: NOT_FOUND
// "user \"ID\" not found", whatever the action, so no caller learns which
// ids exist or whether their users may buy.
package users

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/internal/actions"
	"github.com/streamgate/streamgate/services/internal/ids"
	"github.com/streamgate/streamgate/services/internal/once"
	"github.com/streamgate/streamgate/services/internal/paging"
	"github.com/streamgate/streamgate/services/socket"
)

// CreateInput is CREATE_USER's body.
type CreateInput struct {
	// ID is the new user's id. Admins may choose any; others may only
	// give their own subject, which is also the default for them. An
	// admin who leaves it empty gets a new "usr_…" id.
	ID string `json:"id,omitempty"`
	// Name is required, 1 to 200 characters.
	Name string `json:"name"`
	// Email is required and unique; it is stored in lower case.
	Email string `json:"email"`
	// Status defaults to active; only admins may create a suspended user.
	Status string `json:"status,omitempty"`
}

// Patch is UPDATE_USER's body: the fields set change, the others stay.
type Patch struct {
	Name   *string `json:"name,omitempty"`
	Email  *string `json:"email,omitempty"`
	Status *string `json:"status,omitempty"`
}

// ListInput is LIST_USERS's body: filters and paging.
type ListInput struct {
	Status    string `json:"status,omitempty"`
	Email     string `json:"email,omitempty"`
	PageSize  int    `json:"page_size,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// Page is LIST_USERS's result (paging.Page). NextPageToken is empty on the
// last page.
type Page = paging.Page[User]

// Purchasable is CHECK_PURCHASABLE's result; Reason is "" when the user
// may buy and "suspended" when not. REQUIRE_PURCHASABLE returns it only
// when the user may buy.
type Purchasable struct {
	Purchasable bool   `json:"purchasable"`
	Reason      string `json:"reason"`
}

const (
	maxName  = 200
	maxEmail = 254
	maxID    = 256
	// idPrefix starts the ids made for admins who give none.
	idPrefix = "usr_"
)

type service struct {
	st Store
}

// Register adds the users actions to srv, backed by st.
func Register(srv *socket.Server, st Store) error {
	if st == nil {
		return errors.New("users: nil store")
	}
	s := &service{st: st}
	keyed := once.Keyed(st) // writes apply once per idempotency key
	r := actions.On(srv)
	r.Handle("GET_USER", socket.Typed(s.get), socket.Read(),
		socket.Doc("Returns a user. Admins read any; others only their own (another user is NOT_FOUND, like a missing one)."))
	r.Handle("LIST_USERS", access.AdminOnly("list users")(socket.Typed(s.list)), socket.Read(),
		socket.Doc("Lists users in id order, filtered by status and email, paged by page_size (default 50, max 1000) and page_token. Admin only."))
	r.Handle("CREATE_USER", keyed(socket.Typed(s.create)),
		socket.Doc("Creates a user {id?, name, email, status?}. Signed-in callers create their own (id = subject); admins any id and status. ALREADY_EXISTS when the id or email is taken."))
	r.Handle("UPDATE_USER", keyed(socket.Typed(s.update)), socket.Idempotent(),
		socket.Doc("Changes a user's name, email or status (partial). Others than admins: only their own user (another is NOT_FOUND), never the status."))
	r.Handle("DELETE_USER", keyed(socket.Typed(s.delete)), socket.Idempotent(),
		socket.Doc("Deletes a user and returns it. Admin only (another user is NOT_FOUND for others)."))
	r.Handle("CHECK_PURCHASABLE", socket.Typed(s.checkPurchasable), socket.Read(),
		socket.Doc(`Reports whether a user may buy: {"purchasable": bool, "reason": "" | "suspended"}. The user itself or an admin; another user is NOT_FOUND, like a missing one.`))
	r.Handle("REQUIRE_PURCHASABLE", socket.Typed(s.requirePurchasable), socket.Read(),
		socket.Doc(`Fails unless a user may buy: FAILED_PRECONDITION with details {"reason": "user_suspended", "user_id"} when suspended, NOT_FOUND when unknown; otherwise CHECK_PURCHASABLE's result. The user itself or an admin (another user is NOT_FOUND); a step that stops a purchase.`))
	return r.Err()
}

func (s *service) get(ctx context.Context, id string, _ struct{}) (User, error) {
	if err := visible(ctx, id); err != nil {
		return User{}, err
	}
	u, err := s.st.Get(ctx, id)
	if err != nil {
		return User{}, storeError(err, id, "")
	}
	return u, nil
}

func (s *service) list(ctx context.Context, _ string, in ListInput) (Page, error) {
	size, err := paging.Size(in.PageSize)
	if err != nil {
		return Page{}, err
	}
	if in.Status != "" {
		if err := validStatus(in.Status); err != nil {
			return Page{}, err
		}
	}
	q := Query{Status: in.Status, Email: normalizeEmail(in.Email), After: in.PageToken, Limit: size + 1}
	items, err := s.st.List(ctx, q)
	if err != nil {
		return Page{}, storeError(err, "", "")
	}
	return paging.PageOf(items, size, userID), nil
}

func (s *service) create(ctx context.Context, _ string, in CreateInput) (User, error) {
	p := principal(ctx)
	if !access.SignedIn(p) {
		return User{}, socket.Errorf(socket.CodeUnauthenticated, "sign in to create a user")
	}
	admin := p.HasRole(socket.RoleAdmin)
	generated := false
	switch {
	case in.ID == "" && admin:
		in.ID, generated = ids.New(idPrefix), true
	case in.ID == "":
		in.ID = p.Subject
	case !admin && in.ID != p.Subject:
		return User{}, socket.Errorf(socket.CodePermissionDenied, "you may create only your own user, id %q", p.Subject)
	}
	if err := validID(in.ID); err != nil {
		return User{}, err
	}
	u := User{ID: in.ID, Status: StatusActive, CreatedAt: time.Now().UTC()}
	var err error
	if u.Name, err = validName(in.Name); err != nil {
		return User{}, err
	}
	if u.Email, err = validEmail(in.Email); err != nil {
		return User{}, err
	}
	if in.Status != "" {
		if err := validStatus(in.Status); err != nil {
			return User{}, err
		}
		if in.Status == StatusSuspended && !admin {
			return User{}, socket.Errorf(socket.CodePermissionDenied, "only admins may create a suspended user")
		}
		u.Status = in.Status
	}
	for try := 0; ; try++ {
		err = s.st.Create(ctx, u)
		if !generated || !errors.Is(err, ErrIDTaken) || try == 2 {
			break
		}
		u.ID = ids.New(idPrefix)
	}
	if err != nil {
		return User{}, storeError(err, u.ID, u.Email)
	}
	return u, nil
}

func (s *service) update(ctx context.Context, id string, in Patch) (User, error) {
	if err := visible(ctx, id); err != nil {
		return User{}, err
	}
	if p := principal(ctx); !p.HasRole(socket.RoleAdmin) {
		if in.Status != nil {
			return User{}, socket.Errorf(socket.CodePermissionDenied, "only admins may change a user's status")
		}
	}
	if in.Name != nil {
		name, err := validName(*in.Name)
		if err != nil {
			return User{}, err
		}
		in.Name = &name
	}
	if in.Email != nil {
		email, err := validEmail(*in.Email)
		if err != nil {
			return User{}, err
		}
		in.Email = &email
	}
	if in.Status != nil {
		if err := validStatus(*in.Status); err != nil {
			return User{}, err
		}
	}
	u, err := s.st.Update(ctx, id, in)
	if err != nil {
		email := ""
		if in.Email != nil {
			email = *in.Email
		}
		return User{}, storeError(err, id, email)
	}
	return u, nil
}

func (s *service) delete(ctx context.Context, id string, _ struct{}) (User, error) {
	if err := visible(ctx, id); err != nil {
		return User{}, err
	}
	if !principal(ctx).HasRole(socket.RoleAdmin) {
		return User{}, socket.Errorf(socket.CodePermissionDenied, "only admins may delete users")
	}
	u, err := s.st.Delete(ctx, id)
	if err != nil {
		return User{}, storeError(err, id, "")
	}
	return u, nil
}

// checkPurchasable answers the user itself and admins: the gateway runs
// it as a step of a purchase on behalf of the order's owner (or an admin).
func (s *service) checkPurchasable(ctx context.Context, id string, _ struct{}) (Purchasable, error) {
	u, err := s.get(ctx, id, struct{}{})
	if err != nil {
		return Purchasable{}, err
	}
	if u.Status == StatusSuspended {
		return Purchasable{Reason: StatusSuspended}, nil
	}
	return Purchasable{Purchasable: true}, nil
}

// requirePurchasable is checkPurchasable as a step that fails, so a
// gateway pipeline stops at a user who may not buy.
func (s *service) requirePurchasable(ctx context.Context, id string, in struct{}) (Purchasable, error) {
	p, err := s.checkPurchasable(ctx, id, in)
	if err != nil || p.Purchasable {
		return p, err
	}
	return Purchasable{}, socket.Errorf(socket.CodeFailedPrecondition, "user %q cannot purchase: %s", id, p.Reason).
		WithDetails(map[string]any{"reason": "user_" + p.Reason, "user_id": id})
}

func principal(ctx context.Context) socket.Principal { return socket.MetaFrom(ctx).Principal }

// visible refuses a request without a user id (INVALID_ARGUMENT), and a
// caller who may not see user id (neither the user itself nor an admin)
// with the error a missing user gets, so that other users' accounts
// cannot be told from missing ones.
func visible(ctx context.Context, id string) error {
	if err := requireID(id); err != nil {
		return err
	}
	if p := principal(ctx); !p.HasRole(socket.RoleAdmin) && !isSelf(p, id) {
		return errNotFound(id)
	}
	return nil
}

// errNotFound is the one answer for a user that is missing or not the
// caller's to see.
func errNotFound(id string) error {
	return socket.Errorf(socket.CodeNotFound, "user %q not found", id)
}

// isSelf reports whether id is the signed-in caller's own user.
func isSelf(p socket.Principal, id string) bool { return access.SignedIn(p) && p.Subject == id }

// storeError turns a Store error into the client's error; the id and the
// email name what clashed or was missing.
func storeError(err error, id, email string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return errNotFound(id)
	case errors.Is(err, ErrIDTaken):
		return socket.Errorf(socket.CodeAlreadyExists, "user %q already exists", id).
			WithDetails(map[string]any{"field": "id", "id": id})
	case errors.Is(err, ErrEmailTaken):
		return socket.Errorf(socket.CodeAlreadyExists, "a user with email %q already exists", email).
			WithDetails(map[string]any{"field": "email", "email": email})
	}
	return fmt.Errorf("users: %w", err)
}

func invalid(field, format string, args ...any) error {
	return socket.Errorf(socket.CodeInvalidArgument, field+" "+format, args...).
		WithDetails(map[string]any{"field": field})
}

func requireID(id string) error {
	if id == "" {
		return invalid("id", "is required")
	}
	return nil
}

// validID accepts 1 to 256 bytes of printable UTF-8 without spaces, so
// JWT subjects such as "auth0|42" fit.
func validID(id string) error {
	if id == "" || len(id) > maxID {
		return invalid("id", "must be 1 to %d bytes", maxID)
	}
	if !utf8.ValidString(id) || strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0 {
		return invalid("id", "must be printable, without spaces")
	}
	return nil
}

func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if n := utf8.RuneCountInString(name); n == 0 || n > maxName {
		return "", invalid("name", "is required, 1 to %d characters", maxName)
	}
	return name, nil
}

func normalizeEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// validEmail requires something on both sides of an "@" and no spaces,
// and returns the email in lower case.
func validEmail(email string) (string, error) {
	email = normalizeEmail(email)
	if email == "" {
		return "", invalid("email", "is required")
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 || len(email) > maxEmail || strings.ContainsFunc(email, unicode.IsSpace) {
		return "", invalid("email", "must be an address like name@example.com, at most %d bytes", maxEmail)
	}
	return email, nil
}

func validStatus(status string) error {
	if status != StatusActive && status != StatusSuspended {
		return invalid("status", "must be %q or %q", StatusActive, StatusSuspended)
	}
	return nil
}
