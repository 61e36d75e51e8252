package payments

import (
	"context"

	"github.com/streamgate/streamgate/services/internal/access"
	"github.com/streamgate/streamgate/services/socket"
)

// PayCheck is CHECK_PAYMENT's result: the request would not be refused
// before charging, at Gateway.
type PayCheck struct {
	OKToPay bool   `json:"ok_to_pay"`
	Gateway string `json:"gateway"`
}

// checkPayment runs PAY's checks on PAY's body and charges nothing, so a
// purchase can learn what PAY would refuse before its first side effect.
func (s *service) checkPayment(ctx context.Context, id string, in PayInput) (PayCheck, error) {
	if _, err := s.admit(ctx, id, &in); err != nil {
		return PayCheck{}, err
	}
	return PayCheck{OKToPay: true, Gateway: in.Gateway}, nil
}

// admit is everything PAY refuses before it records or charges anything,
// for PAY and CHECK_PAYMENT alike: a signed-in caller with the rights to
// pay for the user, a well-formed body (amount_cents not negative),
// a gateway the API version supports, and a provider configured for it,
// which it returns. It fills in the body's defaults.
func (s *service) admit(ctx context.Context, id string, in *PayInput) (Provider, error) {
	meta := socket.MetaFrom(ctx)
	who := meta.Principal
	if !access.SignedIn(who) {
		return nil, socket.Errorf(socket.CodeUnauthenticated, "paying needs a signed-in caller")
	}
	if err := checkPay(id, in, who); err != nil {
		return nil, err
	}
	if err := checkGateway(meta.APIVersion, in.Gateway); err != nil {
		return nil, err
	}
	prov := s.providers[in.Gateway]
	if prov == nil {
		return nil, socket.Errorf(socket.CodeUnavailable, "gateway %s is not configured", in.Gateway).
			WithDetails(map[string]any{"gateway": in.Gateway})
	}
	return prov, nil
}
