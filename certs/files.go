package certs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"

	"github.com/meshguard/meshguard/certs/pki"
	"github.com/meshguard/meshguard/internal/manifest"
)

// File names in the files-mode directory (tls.crt/tls.key as controller-runtime's CertDir expects).
const (
	FileCACert   = "ca.crt"
	FileCAKey    = "ca.key"
	FileLeafCert = "tls.crt"
	FileLeafKey  = "tls.key"
)

// setupFiles makes sure dir holds a CA and a leaf covering the wanted names
// (generating them when absent, invalid, or not covering the names), loads
// them, and keeps reloading them while ctx lives.
func setupFiles(ctx context.Context, o Options, log logr.Logger) (*store, error) {
	st := newStore(ModeFiles)
	if err := ensureFiles(o, st.now()); err != nil {
		return nil, err
	}
	last, err := loadFiles(o.Dir, st)
	if err != nil {
		return nil, err
	}
	go func() {
		t := time.NewTicker(o.CheckInterval)
		defer t.Stop()
		var readErr string // the read error last logged
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			cur, err := readFiles(o.Dir)
			if err != nil {
				// Said once until it changes or clears (each tick retries):
				// else a file gone or refused would stop every reload
				// with nothing in the log.
				if err.Error() != readErr {
					readErr = err.Error()
					log.Error(err, "read serving certificate files; serving the previous pair", "dir", o.Dir)
				}
				continue
			}
			readErr = ""
			if cur.equal(last) {
				continue
			}
			if _, err := loadFiles(o.Dir, st); err != nil {
				// Keep serving the previous pair; a half-written rotation retries next tick.
				log.Error(err, "reload serving certificate files", "dir", o.Dir)
				continue
			}
			last = cur
			log.Info("reloaded serving certificate files", "dir", o.Dir)
		}
	}()
	return st, nil
}

type fileSet struct{ ca, cert, key []byte }

func (a fileSet) equal(b fileSet) bool {
	return bytes.Equal(a.ca, b.ca) && bytes.Equal(a.cert, b.cert) && bytes.Equal(a.key, b.key)
}

func readFiles(dir string) (fileSet, error) {
	var fsx fileSet
	var err error
	if fsx.ca, err = readFile(filepath.Join(dir, FileCACert)); err != nil {
		return fsx, err
	}
	if fsx.cert, err = readFile(filepath.Join(dir, FileLeafCert)); err != nil {
		return fsx, err
	}
	if fsx.key, err = readFile(filepath.Join(dir, FileLeafKey)); err != nil {
		return fsx, err
	}
	return fsx, nil
}

func loadFiles(dir string, st *store) (fileSet, error) {
	f, err := readFiles(dir)
	if err != nil {
		return f, fmt.Errorf("read certificate files in %s: %w", dir, err)
	}
	if err := st.set(pki.KeyPair{CertPEM: f.cert, KeyPEM: f.key}, f.ca); err != nil {
		return f, fmt.Errorf("load %s/%s: %w", dir, FileLeafCert, err)
	}
	return f, nil
}

// ensureFiles (re)generates what is missing or unusable: the CA when absent,
// due for renewal or outliving --cert-ca-duration, the leaf when absent, not
// chaining to the CA, due for renewal, outliving --cert-duration, or not
// covering the names. Due as in self mode (pki.RenewalTime), not expired:
// files mode does not renew while running.
func ensureFiles(o Options, now time.Time) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("create --cert-dir %s: %w", o.Dir, err)
	}
	caPath, caKeyPath := filepath.Join(o.Dir, FileCACert), filepath.Join(o.Dir, FileCAKey)
	ca, caErr := readPair(caPath, caKeyPath)
	if caErr == nil {
		if reason := caRenewalReason(ca, o.CADuration, o.CARenewBefore, now); reason != "" {
			caErr = errors.New(reason)
		}
	}
	newCA := false
	if caErr != nil {
		var err error
		if ca, err = pki.NewCA(o.base()+" local CA", now, o.CADuration); err != nil {
			return err
		}
		if err := writeAtomic(caKeyPath, ca.KeyPEM, 0o600); err != nil {
			return err
		}
		if err := writeAtomic(caPath, ca.CertPEM, 0o644); err != nil {
			return err
		}
		newCA = true
	}
	dns, ips := pki.SplitHosts(o.filesHosts())
	leaf, err := readPair(filepath.Join(o.Dir, FileLeafCert), filepath.Join(o.Dir, FileLeafKey))
	if err == nil && !newCA {
		c, perr := leaf.Parsed()
		caCert, _ := ca.Parsed()
		if perr == nil && caCert != nil && pki.SignedBy(c.Leaf, caCert.Leaf) &&
			now.Before(pki.RenewalTime(c.Leaf.NotBefore, c.Leaf.NotAfter, o.LeafRenewBefore)) && pki.CoversNames(c.Leaf, dns, ips) &&
			!outlives(c.Leaf, o.LeafDuration, now) {
			return nil
		}
	}
	leaf, err = pki.NewLeaf(ca, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: o.LeafDuration}, now)
	if err != nil {
		return err
	}
	// Key first: the reloader only swaps once cert and key match.
	if err := writeAtomic(filepath.Join(o.Dir, FileLeafKey), leaf.KeyPEM, 0o600); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(o.Dir, FileLeafCert), leaf.CertPEM, 0o644)
}

// filesHosts: local runs are reached on loopback, plus any Service names.
func (o Options) filesHosts() []string {
	hosts := []string{"localhost", "127.0.0.1"}
	return append(hosts, o.DNSNames()...)
}

// readFile bounds a read as every input path does: the directory is polled,
// and a file there (or /dev/zero behind a symlink) could be any size; a FIFO
// there is refused, not opened (manifest.ReadFile).
func readFile(name string) ([]byte, error) {
	return manifest.ReadFile(name, manifest.DefaultMaxInputBytes)
}

func readPair(certPath, keyPath string) (pki.KeyPair, error) {
	c, err := readFile(certPath)
	if err != nil {
		return pki.KeyPair{}, err
	}
	k, err := readFile(keyPath)
	if err != nil {
		return pki.KeyPair{}, err
	}
	return pki.KeyPair{CertPEM: c, KeyPEM: k}, nil
}

// writeAtomic renames a temp file into place so readers never see half a PEM.
func writeAtomic(path string, data []byte, mode fs.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("chmod %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename into %s: %w", path, err)
	}
	return nil
}
