package wsedge

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// keepAlive pings a socket every interval, keeping it alive through
// proxies and dropping a client that stopped answering, and checks the
// socket's credentials again at each ping.
type keepAlive struct {
	ws       *websocket.Conn
	ctx      context.Context // the socket's: ends when it is over
	interval time.Duration   // Limits.PingInterval
	creds    *sharedCredentials
	core     Core // checks the credentials
	closer   *closer
	done     chan struct{} // closed when loop ends
}

// loop pings the client every interval; a client that has not answered
// within interval (at least minPongWait) is disconnected. At each ping
// the credentials are checked again (recheck).
func (k *keepAlive) loop() {
	defer close(k.done)
	tick := time.NewTicker(k.interval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
		case <-k.ctx.Done():
			return
		}
		k.recheck()
		ctx, cancel := context.WithTimeout(k.ctx, max(k.interval, minPongWait))
		err := k.ws.Ping(ctx)
		cancel()
		if err != nil {
			if k.ctx.Err() == nil && !k.closer.asked() {
				_ = k.ws.CloseNow()
			}
			return
		}
	}
}

// recheck authenticates the socket's credentials again (the
// configuration in force may have removed the key, the token may have
// expired): refused, the socket closes with 4401.
func (k *keepAlive) recheck() {
	creds := k.creds.get()
	if creds == (Credentials{}) {
		return // anonymous
	}
	if _, err := k.core.Admit(creds); err != nil {
		k.closer.ask(closeRequest{code: closeUnauthenticated, reason: closeReason(err.Message)})
	}
}
