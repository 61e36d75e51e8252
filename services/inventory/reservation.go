package inventory

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/streamgate/streamgate/services/internal/paging"
	"github.com/streamgate/streamgate/services/socket"
)

// Details reasons of the reservation actions' errors.
const (
	// ReasonReservationMismatch is the CONFLICT of RESERVE_STOCK and
	// RELEASE_STOCK when the reservation id is recorded with other lines.
	ReasonReservationMismatch = "reservation_mismatch"
	// ReasonReservationReleased is the FAILED_PRECONDITION of RESERVE_STOCK
	// when the reservation id was reserved and released already: its stock
	// is not taken a second time.
	ReasonReservationReleased = "reservation_released"
	// ReasonReservationChanged is the CONFLICT of a RELEASE_STOCK with a
	// version when the held reservation is at another one: it was reserved
	// again since the caller read it, so its purchase may still go on.
	ReasonReservationChanged = "reservation_changed"
)

// maxReservationIDLen bounds a reservation id, in bytes.
const maxReservationIDLen = 255

// ReservationStatus is where a reservation stands.
type ReservationStatus string

// The statuses of a reservation.
const (
	// ReservationHeld: its stock is taken.
	ReservationHeld ReservationStatus = "held"
	// ReservationReleased: its stock was put back, once.
	ReservationReleased ReservationStatus = "released"
	// ReservationUnknown is only an answer of RELEASE_STOCK: no reservation
	// has the id, and nothing changed.
	ReservationUnknown ReservationStatus = "unknown"
)

// Reservation is stock taken for one purchase, under an id the caller
// chooses: the result of RESERVE_STOCK and an entry of LIST_RESERVATIONS.
// Reserved are the merged lines, in the order of the request that made it.
// Version is 1 when it is made and goes up by 1 with every RESERVE_STOCK
// of its id answered while it is held (a replay: a purchase continued), so
// that a release can be a compare-and-set on the reservation as read.
type Reservation struct {
	ID        string            `json:"reservation_id"`
	Reserved  []Line            `json:"reserved"`
	Status    ReservationStatus `json:"status"`
	Version   int64             `json:"version"`
	CreatedAt time.Time         `json:"created_at"`
}

// ReleaseInput is the body of RELEASE_STOCK, all optional: the
// reservation's lines (LinesInput), and the version the caller read, to
// release the reservation only if it is still held at that version.
type ReleaseInput struct {
	LinesInput
	Version int64 `json:"version,omitempty"`
}

// Release is the result of RELEASE_STOCK: the reservation's lines and its
// status now. Released is empty, never null, when the status is unknown.
type Release struct {
	ReservationID string            `json:"reservation_id"`
	Released      []Line            `json:"released"`
	Status        ReservationStatus `json:"status"`
}

// ReservationsInput is the body of LIST_RESERVATIONS: an optional status
// filter and paging.
type ReservationsInput struct {
	Status    ReservationStatus `json:"status,omitempty"`
	PageSize  int               `json:"page_size,omitempty"`
	PageToken string            `json:"page_token,omitempty"`
}

// ReservationPage is the result of LIST_RESERVATIONS.
type ReservationPage struct {
	Reservations  []Reservation `json:"reservations"`
	NextPageToken string        `json:"next_page_token,omitempty"`
}

// ReservationQuery selects a page of reservations ordered by id (byte
// order).
type ReservationQuery struct {
	// Status keeps reservations in that status; empty keeps all.
	Status ReservationStatus
	// After keeps reservations whose id sorts after it; empty starts at the
	// first.
	After string
	// Limit is the most reservations to return; positive.
	Limit int
}

// reserve records the reservation and takes its stock, once per id: the
// same id and lines again answer the stored reservation as a replay.
func (s *service) reserve(ctx context.Context, id string, in LinesInput) (Reservation, error) {
	if id == "" {
		id = socket.MetaFrom(ctx).IdempotencyKey
	}
	if err := checkReservationID(id); err != nil {
		return Reservation{}, err
	}
	lines, err := in.merged()
	if err != nil {
		return Reservation{}, err
	}
	r, existed, err := s.st.Reserve(ctx, Reservation{ID: id, Reserved: lines, CreatedAt: time.Now().UTC()})
	if err != nil || !existed {
		return r, storeError(err, id)
	}
	if !sameLines(r.Reserved, lines) {
		return Reservation{}, errMismatch(id)
	}
	if r.Status != ReservationHeld {
		return Reservation{}, socket.Errorf(socket.CodeFailedPrecondition, "reservation %q was released; reserve again under a new id", id).
			WithDetails(map[string]any{socket.DetailReason: ReasonReservationReleased, "reservation_id": id, "status": string(r.Status)})
	}
	socket.MarkReplayed(ctx)
	return r, nil
}

// release puts a held reservation's stock back, once. Lines, when given,
// must be the reservation's; a version, when given, must be the held
// reservation's. An unknown id changes nothing.
func (s *service) release(ctx context.Context, id string, in ReleaseInput) (Release, error) {
	if err := checkReservationID(id); err != nil {
		return Release{}, err
	}
	if in.Version < 0 {
		return Release{}, socket.Errorf(socket.CodeInvalidArgument, "version must be at least 1 when given").
			WithDetails(map[string]any{"field": "version"})
	}
	unknown := Release{ReservationID: id, Released: []Line{}, Status: ReservationUnknown}
	if in.given() {
		lines, err := in.merged()
		if err != nil {
			return Release{}, err
		}
		// A reservation's lines never change, so checking them before
		// releasing cannot race.
		r, err := s.st.GetReservation(ctx, id)
		if errors.Is(err, ErrNoReservation) {
			return unknown, nil
		}
		if err != nil {
			return Release{}, storeError(err, id)
		}
		if !sameLines(r.Reserved, lines) {
			return Release{}, errMismatch(id)
		}
	}
	r, released, err := s.st.Release(ctx, id, in.Version)
	if errors.Is(err, ErrNoReservation) {
		return unknown, nil
	}
	if errors.Is(err, ErrReservationChanged) {
		return Release{}, socket.Errorf(socket.CodeConflict, "reservation %q was reserved again since version %d; it is not released", id, in.Version).
			WithDetails(map[string]any{socket.DetailReason: ReasonReservationChanged, "reservation_id": id, "version": r.Version})
	}
	if err != nil {
		return Release{}, storeError(err, id)
	}
	if !released {
		socket.MarkReplayed(ctx)
	}
	return Release{ReservationID: r.ID, Released: r.Reserved, Status: r.Status}, nil
}

func (s *service) listReservations(ctx context.Context, _ string, in ReservationsInput) (ReservationPage, error) {
	size, err := paging.Size(in.PageSize)
	if err != nil {
		return ReservationPage{}, err
	}
	if in.Status != "" && in.Status != ReservationHeld && in.Status != ReservationReleased {
		return ReservationPage{}, socket.Errorf(socket.CodeInvalidArgument, "status must be %q or %q", ReservationHeld, ReservationReleased)
	}
	rs, err := s.st.ListReservations(ctx, ReservationQuery{Status: in.Status, After: in.PageToken, Limit: size + 1})
	if err != nil {
		return ReservationPage{}, err
	}
	var p ReservationPage
	p.Reservations, p.NextPageToken = paging.Cut(rs, size, func(r Reservation) string { return r.ID })
	return p, nil
}

// checkReservationID refuses an empty id and one that is not printable
// UTF-8 of at most maxReservationIDLen bytes.
func checkReservationID(id string) error {
	switch {
	case id == "":
		return socket.Errorf(socket.CodeInvalidArgument, "a reservation id is required")
	case len(id) > maxReservationIDLen:
		return socket.Errorf(socket.CodeInvalidArgument, "a reservation id must be at most %d bytes", maxReservationIDLen)
	case !utf8.ValidString(id) || strings.ContainsFunc(id, unicode.IsControl):
		return socket.Errorf(socket.CodeInvalidArgument, "a reservation id must be UTF-8 without control characters")
	}
	return nil
}

// sameLines reports whether two lists of merged lines ask for the same
// quantities of the same items, in any order.
func sameLines(a, b []Line) bool {
	return slices.Equal(byItemID(a), byItemID(b))
}

func errMismatch(id string) error {
	return socket.Errorf(socket.CodeConflict, "reservation %q was made with other lines", id).
		WithDetails(map[string]any{socket.DetailReason: ReasonReservationMismatch, "reservation_id": id})
}

// clone returns r with its own copy of the lines.
func (r Reservation) clone() Reservation {
	r.Reserved = slices.Clone(r.Reserved)
	return r
}
