package load

import (
	"io"
	"net"
	"syscall"
	"unsafe"
)

// rawIO writes and reads a plain TCP connection with raw system calls
// inside its syscall.RawConn: a non-blocking write or read never blocks,
// and without the runtime's syscall bookkeeping a slow loopback write
// (the peer's receive runs in it) does not make the scheduler hand the
// one CPU's P to another thread and back. The RawConn still waits for
// readiness, honours the deadline and reports a closed connection.
type rawIO struct {
	rc      syscall.RawConn
	buf     []byte // being written or read into
	n       int    // bytes done
	errno   error
	writeFn func(fd uintptr) bool // rawIO.write, bound once
	readFn  func(fd uintptr) bool // rawIO.read, bound once
}

// newRawIO returns nc's raw I/O, or nil when nc is not a TCP connection.
func newRawIO(nc net.Conn) io.ReadWriter {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return nil
	}
	r := &rawIO{rc: rc}
	r.writeFn, r.readFn = r.write, r.read
	return r
}

// Write writes all of b.
func (r *rawIO) Write(b []byte) (int, error) {
	r.buf, r.n, r.errno = b, 0, nil
	err := r.rc.Write(r.writeFn)
	r.buf = nil
	if err == nil {
		err = r.errno
	}
	return r.n, err
}

func (r *rawIO) write(fd uintptr) bool {
	for r.n < len(r.buf) {
		p := r.buf[r.n:]
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch {
		case e == syscall.EAGAIN:
			return false // wait until writable
		case e == syscall.EINTR:
			continue
		case e != 0:
			r.errno = e
			return true
		}
		r.n += int(n)
	}
	return true
}

// Read reads what is there into b, waiting for something first.
func (r *rawIO) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.buf, r.n, r.errno = b, 0, nil
	err := r.rc.Read(r.readFn)
	r.buf = nil
	if err == nil {
		err = r.errno
	}
	return r.n, err
}

func (r *rawIO) read(fd uintptr) bool {
	for {
		n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&r.buf[0])), uintptr(len(r.buf)))
		switch {
		case e == syscall.EAGAIN:
			return false // wait until readable
		case e == syscall.EINTR:
			continue
		case e != 0:
			r.errno = e
			return true
		case n == 0:
			r.errno = io.EOF
			return true
		}
		r.n = int(n)
		return true
	}
}
