package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamgate/streamgate/internal/promtest"
)

// `streamgate call -gateway URL -watch items/ID` prints the item's events
// as JSON lines, over the stack's WebSocket endpoint, until interrupted.
func TestCallWatchThroughTheGateway(t *testing.T) {
	t.Setenv("STREAMGATE_ADMIN_KEY", "watch-admin-key")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	stackCtx, stopStack := context.WithCancel(ctx)
	banner := &lineSink{lines: make(chan string, 64)}
	stackDone := make(chan int, 1)
	go func() {
		stackDone <- dispatch(stackCtx, []string{"stack", "-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-admin", "127.0.0.1:0",
			"-store", "memory", "-service-ports=false"}, banner, io.Discard)
	}()
	defer func() {
		stopStack()
		if code := <-stackDone; code != 0 {
			t.Errorf("stack exited %d", code)
		}
		close(banner.lines) // the stack writes no more: ends the drain below
	}()
	rest := strings.Fields(waitLine(t, banner.lines, "REST "))[1]
	grpcAddr := strings.Fields(waitLine(t, banner.lines, "gRPC "))[1]
	admin := strings.Fields(waitLine(t, banner.lines, "admin "))[1]
	waitLine(t, banner.lines, "ready")
	go func() {
		for range banner.lines {
		}
	}()

	put := func(method, path, body string) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, method, rest+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer watch-admin-key")
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
	}
	put("POST", "/v1/items", `{"id":"watched","name":"widget","price_cents":100,"stock":3}`)

	watchCtx, stopWatch := context.WithCancel(ctx)
	out := &lineSink{lines: make(chan string, 64)}
	watchDone := make(chan int, 1)
	go func() {
		watchDone <- dispatch(watchCtx, []string{"call", "-gateway", rest, "-version", "v1", "-watch", "items/watched"}, out, io.Discard)
	}()
	// Subscribed once the gateway sent its answer.
	deadline := time.Now().Add(20 * time.Second)
	for promtest.Scrape(t, admin+"/metrics").Value("streamgate_gateway_socket_frames_sent_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the watch did not subscribe")
		}
		select {
		case code := <-watchDone:
			t.Fatalf("the watch ended (%d) before any event", code)
		case <-time.After(10 * time.Millisecond):
		}
	}
	put("PUT", "/v1/items/watched", `{"price_cents":250}`)
	line := waitLine(t, out.lines, `"type":"event"`)
	if !strings.Contains(line, `"topic":"items/watched"`) || !strings.Contains(line, `"price_cents":250`) || !strings.Contains(line, `"seq":`) {
		t.Fatalf("event line %s", line)
	}
	stopWatch()
	if code := <-watchDone; code != 0 {
		t.Fatalf("the watch exited %d after an interrupt", code)
	}

	// -gateway means the gateway everywhere: its REST URL or its gRPC
	// address for a request, its REST URL for -watch.
	for _, gw := range []string{rest, grpcAddr, strings.Replace(rest, "http://", "ws://", 1)} {
		var got, errOut bytes.Buffer
		if code := dispatch(ctx, []string{"call", "-gateway", gw, "-version", "v1", "inventory", "GET_ITEM", "watched"}, &got, &errOut); code != 0 ||
			!strings.Contains(got.String(), `"ok": true`) || !strings.Contains(got.String(), `"price_cents": 250`) {
			t.Fatalf("call -gateway %s: exit %d, %s %s", gw, code, got.String(), errOut.String())
		}
		got.Reset()
		if code := dispatch(ctx, []string{"call", "-gateway", gw, "-version", "v1", "inventory", "GET_ITEM", "nope"}, &got, &errOut); code != 1 ||
			!strings.Contains(got.String(), `"code": "NOT_FOUND"`) {
			t.Fatalf("call -gateway %s of a missing item: exit %d, %s %s", gw, code, got.String(), errOut.String())
		}
	}
	var errOut bytes.Buffer
	if code := dispatch(ctx, []string{"call", "-gateway", grpcAddr, "-version", "v1", "-watch", "items/watched"}, io.Discard, &errOut); code != 2 ||
		!strings.HasPrefix(errOut.String(), "streamgate: call: -watch through the gateway needs its REST URL") || strings.Count(errOut.String(), "\n") != 1 {
		t.Fatalf("-watch with the gRPC address: exit %d, %q", code, errOut.String())
	}

	// A refused subscription prints its envelope and fails.
	var refused bytes.Buffer
	if code := dispatch(ctx, []string{"call", "-gateway", rest, "-version", "v1", "-watch", "orders/nope"}, &refused, io.Discard); code != 1 || !strings.Contains(refused.String(), `"code": "NOT_FOUND"`) {
		t.Fatalf("watch of a missing order: exit %d, %s", code, refused.String())
	}
}
