package inventory

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"strings"

	"github.com/streamgate/streamgate/services/socket"
)

// maxLines bounds the lines of one request (and the ids of GET_PRICES).
const maxLines = 1000

// LinesInput is the body of CHECK_AVAILABLE, REQUIRE_AVAILABLE,
// RESERVE_STOCK and RELEASE_STOCK (where it is optional): the lines either
// at the top level, {"lines": […]}, or inside an order, {"order": {"lines":
// […], …}}, whose other fields (and the lines' other fields) are ignored.
// The top level is decoded strictly.
type LinesInput struct {
	Lines []Line          `json:"lines,omitempty"`
	Order json.RawMessage `json:"order,omitempty"`
}

// orderLines is the part of an order that matters here; json.Unmarshal
// lets every other field through.
type orderLines struct {
	Lines []Line `json:"lines"`
}

// given reports whether the body names lines at all, in either shape.
func (in LinesInput) given() bool {
	return in.Lines != nil || in.hasOrder()
}

func (in LinesInput) hasOrder() bool {
	return len(in.Order) > 0 && !bytes.Equal(bytes.TrimSpace(in.Order), []byte("null"))
}

// merged validates the lines and sums the quantities of lines naming the
// same item, keeping the order of first appearance.
func (in LinesInput) merged() ([]Line, error) {
	lines, field := in.Lines, "lines"
	hasOrder := in.hasOrder()
	switch {
	case in.Lines != nil && hasOrder:
		return nil, socket.Errorf(socket.CodeInvalidArgument, "give either lines or order, not both")
	case hasOrder:
		var o orderLines
		if err := json.Unmarshal(in.Order, &o); err != nil {
			return nil, orderError(err)
		}
		lines, field = o.Lines, "order.lines"
	}
	if len(lines) == 0 {
		return nil, socket.Errorf(socket.CodeInvalidArgument, "%s: at least one line is required", field)
	}
	if len(lines) > maxLines {
		return nil, socket.Errorf(socket.CodeInvalidArgument, "%s: at most %d lines", field, maxLines)
	}
	out := make([]Line, 0, len(lines))
	at := make(map[string]int, len(lines)) // item id → index in out
	for i, l := range lines {
		switch {
		case l.ItemID == "":
			return nil, socket.Errorf(socket.CodeInvalidArgument, "%s[%d].item_id is required", field, i)
		case l.Quantity < 1:
			return nil, socket.Errorf(socket.CodeInvalidArgument, "%s[%d].quantity must be at least 1", field, i)
		}
		j, seen := at[l.ItemID]
		if !seen {
			at[l.ItemID] = len(out)
			out = append(out, l)
			continue
		}
		if out[j].Quantity > math.MaxInt64-l.Quantity {
			return nil, socket.Errorf(socket.CodeInvalidArgument, "%s: total quantity of item %q is too large", field, l.ItemID)
		}
		out[j].Quantity += l.Quantity
	}
	return out, nil
}

func orderError(err error) error {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		name := "order"
		if typeErr.Field != "" {
			name += "." + typeErr.Field
		}
		return socket.Errorf(socket.CodeInvalidArgument, "invalid body: field %q must be %s, got %s", name, typeErr.Type, typeErr.Value).
			WithDetails(map[string]any{"field": name})
	}
	return socket.Errorf(socket.CodeInvalidArgument, "invalid body: order: %s", strings.TrimPrefix(err.Error(), "json: "))
}

// outOfStock is the error of REQUIRE_AVAILABLE and RESERVE_STOCK when
// stock cannot cover every line.
func outOfStock(missing []Shortage) error {
	return socket.Errorf(socket.CodeFailedPrecondition, "out of stock").
		WithDetails(map[string]any{socket.DetailReason: ReasonOutOfStock, "missing": missing})
}
