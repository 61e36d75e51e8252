package load

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// idMark stands for IDPlaceholder while the URL is parsed and escaped:
// unreserved characters only, so escaping leaves it as it is.
const idMark = "STREAMGATEID7F3A9"

// requestText is every request of a run as HTTP/1.1 bytes, but for the
// ids: built once, then appended per request with the request's id in
// the target and the body, with one allocation-free append.
type requestText struct {
	head    []string // the request line and headers, split where the id goes
	body    []string // the body, split where the id goes; nil: no body
	bodyLen int      // the body's length without its ids
	sized   bool     // a Content-Length is sent (a body, or a method that has one)
}

// newRequestText builds the text of o's requests: the headers net/http's
// client would send (User-Agent and Accept-Encoding by default, Host from
// the URL unless Header says otherwise) and o.Header.
func newRequestText(o Options) (*requestText, string, error) {
	u, err := url.Parse(strings.ReplaceAll(o.URL, IDPlaceholder, idMark))
	if err != nil {
		return nil, "", fmt.Errorf("url: %w", err)
	}
	if strings.Contains(u.Host, idMark) {
		return nil, "", fmt.Errorf("url %q: %s may not be in the host", o.URL, IDPlaceholder)
	}
	host := u.Host
	if h := o.Header.Get("Host"); h != "" {
		host = h
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", o.Method, u.RequestURI(), host)
	if o.Header.Get("User-Agent") == "" {
		b.WriteString("User-Agent: Go-http-client/1.1\r\n")
	}
	if o.Header.Get("Accept-Encoding") == "" && o.Header.Get("Range") == "" && o.Method != http.MethodHead {
		b.WriteString("Accept-Encoding: gzip\r\n")
	}
	if err := o.Header.WriteSubset(&b, map[string]bool{
		"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Trailer": true, "Connection": true,
	}); err != nil {
		return nil, "", err
	}
	t := &requestText{head: strings.Split(b.String(), idMark)}
	switch o.Method {
	case http.MethodPost, http.MethodPut, http.MethodPatch:
		t.sized = true
	}
	if len(o.Body) > 0 {
		t.sized = true
		t.body = strings.Split(string(o.Body), IDPlaceholder)
		t.bodyLen = len(o.Body) - (len(t.body)-1)*len(IDPlaceholder)
	}
	return t, u.Host, nil
}

// appendTo appends the request with id to buf.
func (t *requestText) appendTo(buf []byte, id int64) []byte {
	var digits [20]byte
	idText := strconv.AppendInt(digits[:0], id, 10)
	buf = appendJoined(buf, t.head, idText)
	if t.sized {
		buf = append(buf, "Content-Length: "...)
		n := 0
		if len(t.body) > 0 {
			n = t.bodyLen + (len(t.body)-1)*len(idText)
		}
		buf = strconv.AppendInt(buf, int64(n), 10)
		buf = append(buf, "\r\n"...)
	}
	buf = append(buf, "\r\n"...)
	return appendJoined(buf, t.body, idText)
}

// appendJoined appends parts with sep between them.
func appendJoined(buf []byte, parts []string, sep []byte) []byte {
	for i, p := range parts {
		if i > 0 {
			buf = append(buf, sep...)
		}
		buf = append(buf, p...)
	}
	return buf
}

// target is the URL of the request with id, for an error's message.
func target(rawURL string, id int64) string {
	return strings.ReplaceAll(rawURL, IDPlaceholder, strconv.FormatInt(id, 10))
}
