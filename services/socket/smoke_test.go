package socket_test

import (
	"testing"

	"github.com/streamgate/streamgate/services/socket"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, bufconn := range []bool{true, false} {
		t.Run(map[bool]string{true: "bufconn", false: "tcp"}[bufconn], func(t *testing.T) {
			ts := startServer(t, serverSpec{bufconn: bufconn})
			c := dialServer(t, ts)
			out, err := socket.Call[echoOut](testContext(t), c, "ECHO", "42", echoIn{Text: "Oska"})
			if err != nil {
				t.Fatal(err)
			}
			if out != (echoOut{ID: "42", Text: "Oska"}) {
				t.Fatalf("got %+v", out)
			}
		})
	}
}
