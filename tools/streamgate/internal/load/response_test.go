package load

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadResponse(t *testing.T) {
	t.Parallel()
	const next = "HTTP/1.1 299 Next\r\nContent-Length: 0\r\n\r\n"
	for _, tc := range []struct {
		name      string
		in        string
		head      bool
		status    int
		keepAlive bool
		err       string // "" for none
		rest      bool   // the next answer is read after this one
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello" + next, false, 200, true, "", true},
		{"bare LF", "HTTP/1.1 200 OK\ncontent-length: 2\n\nok" + next, false, 200, true, "", true},
		{"no reason", "HTTP/1.1 404\r\nContent-Length: 0\r\n\r\n" + next, false, 404, true, "", true},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nhel\r\n2\r\nlo\r\n0\r\nT: v\r\n\r\n" + next, false, 200, true, "", true},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n" + next, true, 200, true, "", true},
		{"304", "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n" + next, false, 304, true, "", true},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 1\r\n\r\nx" + next, false, 201, true, "", true},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false, 200, false, "", false},
		{"1.0", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", false, 200, false, "", false},
		{"to the close", "HTTP/1.1 200 OK\r\n\r\nall of it", false, 200, false, "", false},
		{"closed at once", "", false, 0, false, "EOF", false},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false, 200, true, "unexpected EOF", false},
		{"short chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc", false, 200, true, "unexpected EOF", false},
		{"cut headers", "HTTP/1.1 200 OK\r\nContent-Le", false, 0, false, "unexpected EOF", false},
		{"not http", "SSH-2.0-OpenSSH\r\n\r\n", false, 0, false, "malformed", false},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", false, 0, false, "malformed", false},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0, false, "malformed", false},
		{"bad header", "HTTP/1.1 200 OK\r\nno colon\r\n\r\n", false, 0, false, "malformed", false},
		{"gzip encoding", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", false, 0, false, "Transfer-Encoding", false},
		{"bad chunk size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 200, true, "malformed", false},
		{"long line", "HTTP/1.1 200 OK\r\nX: " + strings.Repeat("a", 5000) + "\r\n\r\n", false, 0, false, "too long", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tc.in), 4096)
			status, keepAlive, err := readResponse(r, tc.head)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err %v, want %q", err, tc.err)
			}
			if err == nil && (status != tc.status || keepAlive != tc.keepAlive) {
				t.Fatalf("status %d keep-alive %v, want %d %v", status, keepAlive, tc.status, tc.keepAlive)
			}
			if tc.rest {
				if status, _, err := readResponse(r, false); status != 299 || err != nil {
					t.Fatalf("the next answer: %d, %v", status, err)
				}
			}
		})
	}
}

func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n0\r\n\r\n",
		"HTTP/1.0 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\nto the end",
	} {
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, in []byte, head bool) {
		r := bufio.NewReaderSize(strings.NewReader(string(in)), 4096)
		status, _, err := readResponse(r, head)
		if err == nil && (status < 100 || status > 999) {
			t.Fatalf("status %d without an error", status)
		}
		if errors.Is(err, io.EOF) && len(in) > 0 {
			t.Fatalf("a plain EOF after %d bytes: the answer was cut, not absent", len(in))
		}
	})
}
