package orders

import (
	"context"
	"regexp"
	"strings"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/internal/paging"
	"github.com/streamgate/streamgate/services/socket"
)

// UpdateVoucherInput is UPDATE_VOUCHER's body: only the fields set change.
type UpdateVoucherInput struct {
	DiscountCents *int64 `json:"discount_cents,omitempty"`
}

// ListVouchersInput is LIST_VOUCHERS's body.
type ListVouchersInput struct {
	PageSize  int    `json:"page_size,omitempty"`
	PageToken string `json:"page_token,omitempty"`
}

// voucherCode is what a code looks like once upper-cased.
var voucherCode = regexp.MustCompile(`^[A-Z0-9_-]{3,40}$`)

// adminOnly refuses h to callers who are not signed in
// (UNAUTHENTICATED), then to those who are not admins (PERMISSION_DENIED
// "only admins may WHAT").
func adminOnly(what string, h socket.Handler) socket.Handler {
	return access.SignInOnly(signInMessage)(access.AdminOnly(what)(h))
}

// codeOf returns a request's voucher code, upper-cased.
func codeOf(id string) (string, error) {
	if id == "" {
		return "", socket.Errorf(socket.CodeInvalidArgument, "the voucher code is required")
	}
	return strings.ToUpper(id), nil
}

func checkDiscount(cents int64) error {
	if cents <= 0 {
		return socket.Errorf(socket.CodeInvalidArgument, "discount_cents must be greater than 0, got %d", cents)
	}
	return nil
}

func (s *service) getVoucher(ctx context.Context, id string, _ struct{}) (Voucher, error) {
	if _, err := caller(ctx); err != nil {
		return Voucher{}, err
	}
	code, err := codeOf(id)
	if err != nil {
		return Voucher{}, err
	}
	v, err := s.st.GetVoucher(ctx, code)
	return v, storeError(err, code)
}

func (s *service) listVouchers(ctx context.Context, _ string, in ListVouchersInput) (Page[Voucher], error) {
	size, err := paging.Size(in.PageSize)
	if err != nil {
		return Page[Voucher]{}, err
	}
	items, err := s.st.ListVouchers(ctx, in.PageToken, size+1)
	if err != nil {
		return Page[Voucher]{}, err
	}
	return paging.PageOf(items, size, func(v Voucher) string { return v.Code }), nil
}

func (s *service) createVoucher(ctx context.Context, _ string, in Voucher) (Voucher, error) {
	if in.Code == "" {
		return Voucher{}, socket.Errorf(socket.CodeInvalidArgument, "code is required")
	}
	v := Voucher{Code: strings.ToUpper(in.Code), DiscountCents: in.DiscountCents}
	if !voucherCode.MatchString(v.Code) {
		return Voucher{}, socket.Errorf(socket.CodeInvalidArgument, "code must be 3 to 40 characters of A-Z, 0-9, _ and -, got %q", in.Code)
	}
	if err := checkDiscount(v.DiscountCents); err != nil {
		return Voucher{}, err
	}
	if err := s.st.CreateVoucher(ctx, v); err != nil {
		return Voucher{}, storeError(err, v.Code)
	}
	return v, nil
}

func (s *service) updateVoucher(ctx context.Context, id string, in UpdateVoucherInput) (Voucher, error) {
	code, err := codeOf(id)
	if err != nil {
		return Voucher{}, err
	}
	var v Voucher
	if in.DiscountCents == nil {
		v, err = s.st.GetVoucher(ctx, code)
		return v, storeError(err, code)
	}
	if err := checkDiscount(*in.DiscountCents); err != nil {
		return Voucher{}, err
	}
	v, err = s.st.UpdateVoucher(ctx, Voucher{Code: code, DiscountCents: *in.DiscountCents})
	return v, storeError(err, code)
}

func (s *service) deleteVoucher(ctx context.Context, id string, _ struct{}) (Voucher, error) {
	code, err := codeOf(id)
	if err != nil {
		return Voucher{}, err
	}
	v, err := s.st.DeleteVoucher(ctx, code)
	return v, storeError(err, code)
}
