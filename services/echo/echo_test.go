package echo_test

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/streamgate/streamgate/services/echo"
	"github.com/streamgate/streamgate/services/socket"
	"github.com/streamgate/streamgate/services/socket/caller"
	"github.com/streamgate/streamgate/services/socket/sockettest"
	"github.com/streamgate/streamgate/status"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEchoOverTheSocket(t *testing.T) {
	srv, err := socket.NewServer(socket.Config{Name: "echo"}, socket.WithoutAuth())
	if err != nil {
		t.Fatal(err)
	}
	if err := echo.Register(srv); err != nil {
		t.Fatal(err)
	}
	c := sockettest.Start(t, srv)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	vctx := sockettest.As(t, "v3", "user-1")
	got, err := caller.Call[echo.Message](vctx, c, "ECHO", "9", echo.Message{Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	if got != (echo.Message{ID: "9", Text: "hi", Version: "v3", Principal: "user-1"}) {
		t.Fatalf("ECHO = %+v", got)
	}
	if _, err := c.Request(ctx, "SLEEP", "", -1); status.CodeOf(err) != socket.CodeInvalidArgument {
		t.Fatalf("SLEEP -1: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancelShort()
	if _, err := c.Request(short, "SLEEP", "", 5000); status.CodeOf(err) != socket.CodeDeadlineExceeded {
		t.Fatalf("SLEEP past the deadline: %v", err)
	}
}
