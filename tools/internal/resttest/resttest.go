// Package resttest is a client of the gateway's REST edge for tests: it
// sends a request with a credential, a JSON body and headers, and decodes
// the standard envelope with the status and headers.
//
//	c := &resttest.Client{Base: "http://127.0.0.1:8080", HTTP: http.DefaultClient}
//	r, err := c.Do(adminKey, "POST", "/v1/items", map[string]any{"name": "book"})
//	item := resttest.Into[inventory.Item](t, r.Want(t, http.StatusCreated, ""))
package resttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/envelope"
	"github.com/streamgate/streamgate/services/socket"
	sgstatus "github.com/streamgate/streamgate/status"
)

// Reply is an answer of the REST edge: the envelope, its status and
// headers, the raw body and how long it took.
type Reply struct {
	envelope.Envelope

	Status int           `json:"-"`
	Raw    string        `json:"-"`
	Header http.Header   `json:"-"`
	Took   time.Duration `json:"-"`
}

// Reason is the error's details reason, if any.
func (r Reply) Reason() string {
	if r.Error == nil {
		return ""
	}
	s, _ := r.Error.Details[socket.DetailReason].(string)
	return s
}

// Want fails the test unless the reply has the status and, for errors,
// the code ("" for a success).
func (r Reply) Want(t testing.TB, status int, code sgstatus.Code) Reply {
	t.Helper()
	got := sgstatus.Code("")
	if r.Error != nil {
		got = r.Error.Code
	}
	if r.Status != status || got != code || r.OK != (code == "") {
		t.Fatalf("got %d %s, want %d %s: %s", r.Status, got, status, code, r.Raw)
	}
	return r
}

// Into decodes a reply's result, failing the test when it cannot.
func Into[T any](t testing.TB, r Reply) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Result, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, r.Raw)
	}
	return v
}

// Client sends requests to a REST edge.
type Client struct {
	// Base is the edge's URL, e.g. "http://127.0.0.1:8080".
	Base string
	// HTTP sends the requests.
	HTTP *http.Client
}

// Do sends one request as cred (the text after "Bearer "; "" for none);
// body is JSON-encoded unless nil; header holds name, value pairs. It is
// safe for concurrent use; an answer that is not an envelope is an error.
func (c *Client) Do(cred, method, path string, body any, header ...string) (Reply, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Reply{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.Base+path, rd)
	if err != nil {
		return Reply{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cred != "" {
		req.Header.Set("Authorization", "Bearer "+cred)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	begin := time.Now()
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return Reply{}, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	r := Reply{Status: resp.StatusCode, Raw: string(b), Header: resp.Header, Took: time.Since(begin)}
	if err := json.Unmarshal(b, &r); err != nil {
		return Reply{}, fmt.Errorf("%s %s: %d, not an envelope: %w\n%s", method, path, resp.StatusCode, err, b)
	}
	return r, nil
}
