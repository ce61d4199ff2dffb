//go:build linux || darwin || freebsd || netbsd || openbsd

package remote

import (
	"net"
	"syscall"
)

// idleConnAlive peeks, without blocking, at an idle TCP connection: EOF (the host closed
// its keep-alive connection) or unexpected bytes mean it cannot carry another request.
func idleConnAlive(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return true
	}
	alive := true
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		switch {
		case err == syscall.EAGAIN || err == syscall.EWOULDBLOCK || err == syscall.EINTR:
		case err != nil, n == 0, n > 0:
			alive = false
		}
		return true // never wait for readiness
	})
	return alive
}
