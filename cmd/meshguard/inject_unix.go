//go:build unix

package main

import (
	"io/fs"
	"os"
	"syscall"
)

// keepsIdentity reports whether tmp can replace the file fi describes
// without another name of it keeping the old content (a hard link) or its
// owner and group changing (root rewriting another user's file), giving tmp
// that owner and group where it can. os.Create, as istioctl writes -o,
// keeps both.
func keepsIdentity(tmp *os.File, fi fs.FileInfo) bool {
	old, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	if old.Nlink > 1 {
		return false
	}
	ti, err := tmp.Stat()
	if err != nil {
		return false
	}
	if cur, ok := ti.Sys().(*syscall.Stat_t); ok && cur.Uid == old.Uid && cur.Gid == old.Gid {
		return true
	}
	return tmp.Chown(int(old.Uid), int(old.Gid)) == nil
}
