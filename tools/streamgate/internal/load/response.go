package load

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// errMalformed is an answer that is not HTTP/1.x as this engine reads it.
var errMalformed = errors.New("malformed HTTP response")

// readResponse reads one answer from r and discards its body: the
// status, and whether the connection may carry the next request. The
// body is framed by Content-Length or chunked encoding; without either it
// runs to the connection's close, as HTTP/1.1 says. head tells that the
// request was a HEAD (no body, whatever the headers say).
func readResponse(r *bufio.Reader, head bool) (status int, keepAlive bool, err error) {
	var (
		length  int64 = -1
		chunked bool
	)
	for interim := false; ; interim = true {
		if status, keepAlive, err = readStatusLine(r); err != nil {
			if interim {
				err = eofInBody(err)
			}
			return 0, false, err
		}
		length, chunked = -1, false
		for {
			line, err := readLine(r)
			if err != nil {
				return 0, false, eofInBody(err)
			}
			if len(line) == 0 {
				break
			}
			name, value, ok := bytes.Cut(line, []byte(":"))
			if !ok {
				return 0, false, errMalformed
			}
			value = bytes.TrimSpace(value)
			switch {
			case bytes.EqualFold(name, []byte("Content-Length")):
				n, err := strconv.ParseInt(string(value), 10, 64)
				if err != nil || n < 0 {
					return 0, false, errMalformed
				}
				length = n
			case bytes.EqualFold(name, []byte("Transfer-Encoding")):
				chunked = bytes.EqualFold(value, []byte("chunked"))
				if !chunked {
					return 0, false, errors.New("unsupported Transfer-Encoding")
				}
			case bytes.EqualFold(name, []byte("Connection")):
				if bytes.EqualFold(value, []byte("close")) {
					keepAlive = false
				} else if bytes.EqualFold(value, []byte("keep-alive")) {
					keepAlive = true
				}
			}
		}
		// An interim answer (100 Continue, 103 Early Hints) comes before
		// the real one.
		if status >= 200 || status == 101 {
			break
		}
	}
	switch {
	case head || status < 200 || status == 204 || status == 304:
		if status == 101 {
			keepAlive = false // the connection speaks something else now
		}
		return status, keepAlive, nil
	case chunked:
		return status, keepAlive, discardChunked(r)
	case length >= 0:
		_, err := r.Discard(int(length))
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return status, keepAlive, err
	default:
		_, err := io.Copy(io.Discard, r)
		return status, false, err
	}
}

// readStatusLine reads "HTTP/1.x NNN reason": the status, and whether the
// connection stays open by default (HTTP/1.1) or not (HTTP/1.0).
func readStatusLine(r *bufio.Reader) (status int, keepAlive bool, err error) {
	line, err := readLine(r)
	if err != nil {
		if errors.Is(err, io.EOF) {
			// Closed before a byte of the answer: io.EOF itself, as
			// net/http's client says it.
			return 0, false, io.EOF
		}
		return 0, false, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, false, errMalformed
	}
	for _, c := range line[9:12] {
		if c < '0' || c > '9' {
			return 0, false, errMalformed
		}
		status = status*10 + int(c-'0')
	}
	if status < 100 {
		return 0, false, errMalformed
	}
	return status, line[7] != '0', nil
}

// readLine reads a line without its CRLF (or LF). The line is r's until
// the next read.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		return nil, errors.New("an HTTP response line too long")
	}
	if err != nil {
		if errors.Is(err, io.EOF) && len(line) > 0 {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// discardChunked reads and drops a chunked body, trailers included.
func discardChunked(r *bufio.Reader) error {
	for {
		line, err := readLine(r)
		if err != nil {
			return eofInBody(err)
		}
		size, _, _ := bytes.Cut(line, []byte(";"))
		n, err := strconv.ParseInt(string(bytes.TrimSpace(size)), 16, 64)
		if err != nil || n < 0 {
			return errMalformed
		}
		if n == 0 {
			for { // trailers, then a blank line
				line, err := readLine(r)
				if err != nil {
					return eofInBody(err)
				}
				if len(line) == 0 {
					return nil
				}
			}
		}
		if _, err := r.Discard(int(n)); err != nil {
			return eofInBody(err)
		}
		if line, err := readLine(r); err != nil || len(line) != 0 {
			if err != nil {
				return eofInBody(err)
			}
			return errMalformed
		}
	}
}

// eofInBody makes a close within an answer an unexpected EOF.
func eofInBody(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
