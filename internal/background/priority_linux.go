package background

import "golang.org/x/sys/unix"

// lowerThreadPriority sets the calling OS thread's nice value: on Linux
// PRIO_PROCESS with a thread ID addresses that one thread (setpriority(2),
// NOTES).
func lowerThreadPriority() error {
	return unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), Nice)
}
