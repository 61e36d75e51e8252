package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/status"
)

// watchGateway subscribes to topic over the gateway's WebSocket endpoint
// (base is the gateway's REST URL) and prints one JSON line per event
// or gap marker until ctx ends. A refused subscription prints its error envelope and
// reports ok false; setup (dial, subscribe) is bounded by timeout.
func watchGateway(ctx context.Context, base, key, version, topic string, timeout time.Duration, stdout io.Writer) (ok bool, err error) {
	if version == "" {
		return false, usagef("-watch with -gateway needs -version")
	}
	u, err := socketURL(base, version)
	if err != nil {
		return false, err
	}
	h := http.Header{}
	if key != "" {
		h.Set("Authorization", "Bearer "+key)
	}
	setup, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, _, err := websocket.Dial(setup, u, &websocket.DialOptions{Subprotocols: []string{"streamgate.v1"}, HTTPHeader: h})
	if err != nil {
		return false, fmt.Errorf("%s: %w", u, err)
	}
	defer c.CloseNow()
	c.SetReadLimit(16 << 20)
	sub, _ := json.Marshal(map[string]string{"type": "subscribe", "id": "watch", "topic": topic})
	if err := c.Write(setup, websocket.MessageText, sub); err != nil {
		return false, fmt.Errorf("%s: %w", u, err)
	}
	answered := false
	for {
		readCtx := ctx
		if !answered {
			readCtx = setup
		}
		_, b, err := c.Read(readCtx)
		switch {
		case ctx.Err() != nil:
			_ = c.Close(websocket.StatusNormalClosure, "")
			return true, nil // interrupted
		case err != nil:
			return false, fmt.Errorf("the gateway closed the socket: %w", err)
		}
		var f struct {
			Type  string        `json:"type"`
			OK    bool          `json:"ok"`
			Error *status.Error `json:"error"`
		}
		if json.Unmarshal(b, &f) != nil {
			continue
		}
		switch f.Type {
		case "response":
			if !f.OK {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return false, enc.Encode(envelope.New(nil, f.Error))
			}
			answered = true
		case "event", "gap": // a gap: events up to its seq may be missing
			if _, err := fmt.Fprintf(stdout, "%s\n", b); err != nil {
				return false, err
			}
		}
	}
}

// socketURL is the WebSocket endpoint of a version at a gateway's REST
// URL (http, https, ws or wss).
func socketURL(base, version string) (string, error) {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return "", usagef("-watch needs -gateway as the gateway's REST URL, e.g. http://127.0.0.1:8080, not %q", base)
	}
	switch u.Scheme {
	case "http", "ws":
		u.Scheme = "ws"
	case "https", "wss":
		u.Scheme = "wss"
	default:
		return "", usagef("-watch needs -gateway as the gateway's REST URL (http, https, ws or wss), not %q", base)
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + url.PathEscape(version) + "/socket"
	return u.String(), nil
}
