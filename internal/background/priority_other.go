//go:build !linux

package background

import "errors"

func lowerThreadPriority() error {
	return errors.New("lowering one thread's priority is implemented on Linux only")
}
