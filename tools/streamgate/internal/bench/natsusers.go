package bench

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/streamgate/streamgate/services/socket/natsserve"
)

// natsStartTimeout bounds how long the embedded NATS server may take to
// accept connections.
const natsStartTimeout = 10 * time.Second

// serveStreamgateUsersNATS runs streamgate's users service (as
// serveStreamgateUsers) over NATS request-reply alone, with a NATS server
// embedded in this process on addr, and says ready with the server's URL:
// the broker's CPU counts as the service's.
func serveStreamgateUsersNATS(ctx context.Context, addr string, all []User, serviceKey string, ready func(string)) error {
	srv, err := streamgateUsers(ctx, all, serviceKey)
	if err != nil {
		return err
	}
	ns, err := embedNATS(addr)
	if err != nil {
		return err
	}
	defer func() {
		ns.Shutdown()
		ns.WaitForShutdown()
	}()
	nc, err := nats.Connect(ns.ClientURL(), nats.Name("streamgate bench users"))
	if err != nil {
		return err
	}
	defer nc.Close()
	ready(ns.ClientURL())
	return srv.Serve(ctx, natsserve.Listen(nc, nil))
}

// embedNATS starts a NATS server in this process on addr (host:port; port
// 0 picks a free one), without logs or signal handling.
func embedNATS(addr string) (*server.Server, error) {
	host, portText, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, err
	}
	if port == 0 {
		port = server.RANDOM_PORT
	}
	ns, err := server.NewServer(&server.Options{Host: host, Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		return nil, err
	}
	ns.Start()
	if !ns.ReadyForConnections(natsStartTimeout) {
		ns.Shutdown()
		return nil, errors.New("streamgate-users-nats: the embedded NATS server did not start")
	}
	return ns, nil
}
