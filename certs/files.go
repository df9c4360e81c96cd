package certs

import (
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
// (generating them when absent, invalid, or not covering the names, unless
// the files are the operator's: meshguardOwnsFiles), loads them, and keeps
// reloading them while ctx lives.
func setupFiles(ctx context.Context, o Options, log logr.Logger) (*store, error) {
	st := newStore(ModeFiles)
	if err := ensureFiles(o, st.now()); err != nil {
		return nil, err
	}
	if err := loadFiles(o.Dir, st); err != nil {
		return nil, err
	}
	if owned, err := meshguardOwnsFiles(o.Dir); err != nil {
		return nil, err
	} else if !owned {
		logSupplied(o, st, log)
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
			// Asked of the store, not of the bytes last read: files back
			// to the served pair also drop a pair kept pending meanwhile.
			if st.unchanged(pki.KeyPair{CertPEM: cur.cert, KeyPEM: cur.key}, cur.ca) {
				continue
			}
			if err := loadFiles(o.Dir, st); err != nil {
				// Keep serving the previous pair; a half-written rotation retries next tick.
				log.Error(err, "reload serving certificate files", "dir", o.Dir)
				continue
			}
			log.Info("reloaded serving certificate files", "dir", o.Dir)
		}
	}()
	return st, nil
}

// logSupplied says, at start, until when the operator's pair serves:
// meshguard cannot renew it.
func logSupplied(o Options, st *store, log logr.Logger) {
	leaf := st.current().Leaf
	file := filepath.Join(o.Dir, FileLeafCert)
	due := pki.RenewalTime(leaf.NotBefore, leaf.NotAfter, o.LeafRenewBefore)
	log.Info("serving the certificate supplied in --cert-dir as it is: without "+FileCAKey+" meshguard does not re-issue it",
		"file", file, "notBefore", leaf.NotBefore, "notAfter", leaf.NotAfter, "serial", leaf.SerialNumber.String())
	if !st.now().Before(due) {
		log.Error(errors.New("supplied serving certificate is due for renewal"), "replace it before it expires; meshguard will not start on it once expired",
			"file", file, "notAfter", leaf.NotAfter)
	}
}

type fileSet struct{ ca, cert, key []byte }

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

func loadFiles(dir string, st *store) error {
	f, err := readFiles(dir)
	if err != nil {
		return fmt.Errorf("read certificate files in %s: %w", dir, err)
	}
	if err := st.set(pki.KeyPair{CertPEM: f.cert, KeyPEM: f.key}, f.ca); err != nil {
		return pairFileError(dir, err)
	}
	return nil
}

// pairFileError names the file of dir that the store's refusal is about.
func pairFileError(dir string, err error) error {
	ca, crt, key := filepath.Join(dir, FileCACert), filepath.Join(dir, FileLeafCert), filepath.Join(dir, FileLeafKey)
	var pe *pairError
	if !errors.As(err, &pe) {
		return fmt.Errorf("load %s: %w", crt, err)
	}
	switch pe.part {
	case partKeyPair:
		return fmt.Errorf("%s with %s: %w", crt, key, err)
	case partBundle:
		return fmt.Errorf("%s: %w", ca, err)
	case partChain:
		return fmt.Errorf("%s against %s: %w", crt, ca, err)
	default:
		return fmt.Errorf("%s: %w", crt, err)
	}
}

// meshguardOwnsFiles reports whether the files in dir are meshguard's to
// (re)generate: ca.key is there (meshguard writes it first, so a directory
// it left half-written has it too), or none of the four files is. Without
// ca.key, a ca.crt, tls.crt or tls.key is the operator's: a certificate
// handed to the server as istiod takes one from its well-known directory
// (pilot/pkg/bootstrap/server.go initIstiodCerts, hasCustomTLSCerts), and
// meshguard could not re-issue it anyway.
func meshguardOwnsFiles(dir string) (bool, error) {
	present := func(name string) (bool, error) {
		_, err := os.Lstat(filepath.Join(dir, name))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, fs.ErrNotExist):
			return false, nil
		default:
			return false, fmt.Errorf("--cert-dir: %w", err)
		}
	}
	if ok, err := present(FileCAKey); ok || err != nil {
		return ok, err
	}
	for _, name := range []string{FileCACert, FileLeafCert, FileLeafKey} {
		if ok, err := present(name); ok || err != nil {
			return false, err
		}
	}
	return true, nil
}

// checkSupplied is ensureFiles for the operator's files: they are used as
// they are or meshguard does not start; it never writes over them.
func checkSupplied(o Options, now time.Time) error {
	hint := fmt.Sprintf("(no %s in --cert-dir %s: the files are the operator's and meshguard does not replace them; "+
		"fix them, or remove ca.crt, tls.crt and tls.key for meshguard to generate its own)", FileCAKey, o.Dir)
	f, err := readFiles(o.Dir)
	if err != nil {
		return fmt.Errorf("read supplied certificate files %s: %w", hint, err)
	}
	p, err := verifyPair(pki.KeyPair{CertPEM: f.cert, KeyPEM: f.key}, f.ca, now)
	if err != nil {
		return fmt.Errorf("%w %s", pairFileError(o.Dir, err), hint)
	}
	leaf := p.cert.Leaf
	if dns, ips := pki.SplitHosts(o.filesHosts()); !pki.CoversNames(leaf, dns, ips) {
		return fmt.Errorf("%s covers DNS names %v and IPs %v, not every name meshguard serves under (%v) %s",
			filepath.Join(o.Dir, FileLeafCert), leaf.DNSNames, leaf.IPAddresses, o.filesHosts(), hint)
	}
	return nil
}

// ensureFiles (re)generates what is missing or unusable: the CA when absent,
// due for renewal or outliving --cert-ca-duration, the leaf when absent, not
// chaining to the CA, due for renewal, outliving --cert-duration, or not
// covering the names. Due as in self mode (pki.RenewalTime), not expired:
// files mode does not renew while running. Files meshguard did not generate
// (meshguardOwnsFiles) are checked, never written.
func ensureFiles(o Options, now time.Time) error {
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return fmt.Errorf("create --cert-dir %s: %w", o.Dir, err)
	}
	owned, err := meshguardOwnsFiles(o.Dir)
	if err != nil {
		return err
	}
	if !owned {
		return checkSupplied(o, now)
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
		// The store's rule (intermediates in tls.crt included), against all of ca.crt.
		if p, verr := verifyPair(leaf, ca.CertPEM, now); verr == nil {
			c := p.cert.Leaf
			if now.Before(pki.RenewalTime(c.NotBefore, c.NotAfter, o.LeafRenewBefore)) && pki.CoversNames(c, dns, ips) &&
				!outlives(c, o.LeafDuration, now) {
				return nil
			}
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
