package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"time"
)

// readyWait bounds how long a system may answer 502, 503 or 504 after it
// listens (the streamgate gateway opens its socket to the service then).
const readyWait = 15 * time.Second

// Check reads every user of want through base (GET /v1/users/{id} with
// X-API-Key: key) and compares each answer with the user expected: status
// 200 and the same JSON user (inside streamgate's {"ok": true, "result":
// …} envelope where the system has one). A request without the key must
// be refused.
func Check(ctx context.Context, base, key string, want []User) error {
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	get := func(id, key string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/users/"+id, nil)
		if err != nil {
			return 0, nil, err
		}
		if key != "" {
			req.Header.Set("X-API-Key", key)
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return resp.StatusCode, body, err
	}
	// Wait until the system can answer at all.
	deadline := time.Now().Add(readyWait)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		code, _, err := get(want[0].ID, key)
		if err != nil {
			return err
		}
		if code != http.StatusBadGateway && code != http.StatusServiceUnavailable && code != http.StatusGatewayTimeout {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still answering %d after %v", code, readyWait)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if code, body, err := get(want[0].ID, ""); err != nil {
		return err
	} else if code != http.StatusUnauthorized {
		return fmt.Errorf("without an API key: status %d (%s), want 401", code, bytes.TrimSpace(body))
	}
	for _, u := range want {
		code, body, err := get(u.ID, key)
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("user %s: status %d (%s), want 200", u.ID, code, bytes.TrimSpace(body))
		}
		if err := sameUser(body, u); err != nil {
			return fmt.Errorf("user %s: %w", u.ID, err)
		}
	}
	return nil
}

// sameUser tells whether body is u as JSON, bare or in an envelope.
func sameUser(body []byte, u User) error {
	var got map[string]any
	if err := json.Unmarshal(body, &got); err != nil {
		return fmt.Errorf("answer is not a JSON object: %s", bytes.TrimSpace(body))
	}
	if ok, hasOK := got["ok"].(bool); hasOK {
		result, isObject := got["result"].(map[string]any)
		if !ok || !isObject {
			return fmt.Errorf("envelope without a result: %s", bytes.TrimSpace(body))
		}
		got = result
	}
	var want map[string]any
	b, _ := json.Marshal(u)
	_ = json.Unmarshal(b, &want)
	if !reflect.DeepEqual(got, want) {
		return fmt.Errorf("answered %s, want %s", bytes.TrimSpace(body), b)
	}
	return nil
}
