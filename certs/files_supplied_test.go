package certs

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kubefake "k8s.io/client-go/kubernetes/fake"

	"github.com/meshguard/meshguard/certs/pki"
)

// rootAndIntermediate builds a root CA without a path length limit and an
// intermediate it signs (pki.NewCA's CAs sign leaves only): the chain an
// organisation's PKI hands a server.
func rootAndIntermediate(t *testing.T, now time.Time) (rootPEM []byte, inter pki.KeyPair) {
	t.Helper()
	mk := func(cn string, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey, []byte) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(1000 * time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		if parent == nil {
			parent, parentKey = tmpl, key
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c, key, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	}
	root, rootKey, rootPEM := mk("org root", nil, nil)
	_, interKey, interPEM := mk("org intermediate", root, rootKey)
	kd, err := x509.MarshalECPrivateKey(interKey)
	if err != nil {
		t.Fatal(err)
	}
	return rootPEM, pki.KeyPair{CertPEM: interPEM, KeyPEM: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})}
}

// writeSupplied writes the files an operator hands files mode: no ca.key.
func writeSupplied(t *testing.T, dir string, caPEM []byte, leaf pki.KeyPair) {
	t.Helper()
	for name, data := range map[string][]byte{FileCACert: caPEM, FileLeafCert: leaf.CertPEM, FileLeafKey: leaf.KeyPEM} {
		if data == nil {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// dirContents maps each file in dir to its bytes.
func dirContents(t *testing.T, dir string) map[string]string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// logSink collects a funcr logger's lines.
type logSink struct {
	mu    sync.Mutex
	lines []string
}

func (l *logSink) logger() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{})
}

// errors is the lines logged at error level.
func (l *logSink) errors() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, `"error"`) {
			out = append(out, line)
		}
	}
	return out
}

func (l *logSink) find(substrs ...string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
next:
	for _, line := range l.lines {
		for _, s := range substrs {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		return line
	}
	return ""
}

// TestFilesSuppliedPairKept: ca.crt + tls.crt + tls.key without ca.key is a
// certificate the operator supplied (the files istiod reads from its
// well-known directory, pilot/pkg/bootstrap/server.go initIstiodCerts): it
// is served as it is, directly signed or through an intermediate carried in
// tls.crt, nothing in the directory is rewritten, and its expiry is logged.
func TestFilesSuppliedPairKept(t *testing.T) {
	now := time.Now()
	o, err := Options{Mode: ModeFiles, Dir: "set per case"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	dns, ips := pki.SplitHosts(o.filesHosts())
	spec := pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: 24 * time.Hour}

	ca, _ := mustCA(t, now.Add(-time.Hour), 1000*time.Hour)
	direct, err := pki.NewLeaf(ca, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	rootPEM, inter := rootAndIntermediate(t, now)
	viaInter, err := pki.NewLeaf(inter, spec, now)
	if err != nil {
		t.Fatal(err)
	}
	viaInter.CertPEM = append(viaInter.CertPEM, inter.CertPEM...)

	for _, tc := range []struct {
		name  string
		caPEM []byte
		leaf  pki.KeyPair
	}{
		{"signed by ca.crt", ca.CertPEM, direct},
		{"through an intermediate in tls.crt", rootPEM, viaInter},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSupplied(t, dir, tc.caPEM, tc.leaf)
			before := dirContents(t, dir)
			var logs logSink
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := o
			o.Dir = dir
			src, err := Setup(ctx, nil, o, logs.logger())
			if err != nil {
				t.Fatalf("Setup refused a valid supplied pair: %v", err)
			}
			if after := dirContents(t, dir); !equalMaps(before, after) {
				t.Fatalf("files mode rewrote supplied files: had %v, now %v", keys(before), keys(after))
			}
			c, _ := src.GetCertificate(nil)
			if c == nil || !bytes.Equal(c.Certificate[0], firstDER(tc.leaf.CertPEM)) {
				t.Fatal("the supplied leaf is not the one served")
			}
			if !bytes.Equal(src.CABundle(), tc.caPEM) {
				t.Fatal("the served bundle is not the supplied ca.crt")
			}
			if line := logs.find(FileLeafCert, "notAfter"); line == "" {
				t.Fatalf("no log line naming %s and its expiry; logged %q", FileLeafCert, logs.lines)
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestFilesSuppliedPairRefused: a supplied pair meshguard cannot serve (no
// ca.key: not meshguard's to re-issue) stops the start with an error naming
// the file to fix, and the directory is left as it was.
func TestFilesSuppliedPairRefused(t *testing.T) {
	now := time.Now()
	o, err := Options{Mode: ModeFiles, Dir: "set per case"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	dns, ips := pki.SplitHosts(o.filesHosts())
	ca, _ := mustCA(t, now.Add(-100*time.Hour), 1000*time.Hour)
	other, _ := mustCA(t, now.Add(-time.Hour), 1000*time.Hour)
	leaf := func(dns []string, at time.Time, life time.Duration) pki.KeyPair {
		kp, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: life}, at)
		if err != nil {
			t.Fatal(err)
		}
		return kp
	}
	good := leaf(dns, now, 24*time.Hour)
	for _, tc := range []struct {
		name  string
		caPEM []byte
		leaf  pki.KeyPair
		want  []string
	}{
		{"expired", ca.CertPEM, leaf(dns, now.Add(-48*time.Hour), 24*time.Hour), []string{FileLeafCert, "expired"}},
		{"not covering the names", ca.CertPEM, leaf([]string{"other.example"}, now, 24*time.Hour), []string{FileLeafCert, "localhost"}},
		{"not chaining to ca.crt", other.CertPEM, good, []string{FileLeafCert, FileCACert}},
		{"empty ca.crt", []byte{}, good, []string{FileCACert, "empty"}},
		{"no ca.crt", nil, good, []string{FileCACert}},
		{"no tls.key", ca.CertPEM, pki.KeyPair{CertPEM: good.CertPEM}, []string{FileLeafKey}},
		{"key of another pair", ca.CertPEM, pki.KeyPair{CertPEM: good.CertPEM, KeyPEM: other.KeyPEM}, []string{FileLeafCert, FileLeafKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeSupplied(t, dir, tc.caPEM, tc.leaf)
			before := dirContents(t, dir)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			o := o
			o.Dir = dir
			_, err := Setup(ctx, nil, o, logr.Discard())
			if err == nil {
				t.Fatal("Setup accepted a supplied pair it cannot serve")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if after := dirContents(t, dir); !equalMaps(before, after) {
				t.Fatalf("files mode rewrote supplied files: had %v, now %v", keys(before), keys(after))
			}
		})
	}
}

// TestFilesKeptPairThroughIntermediate: with ca.key present (meshguard's to
// renew) a leaf in tls.crt that chains to ca.crt through an intermediate of
// its own chain is kept as store.set accepts it; SignedBy, a direct
// signature only, had re-issued it at every start.
func TestFilesKeptPairThroughIntermediate(t *testing.T) {
	now := time.Now()
	dir := t.TempDir()
	o, err := Options{Mode: ModeFiles, Dir: dir}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureFiles(o, now); err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, FileCACert))
	caKey, _ := os.ReadFile(filepath.Join(dir, FileCAKey))
	// The operator's own root beside meshguard's CA in ca.crt.
	rootPEM, inter := rootAndIntermediate(t, now)
	dns, ips := pki.SplitHosts(o.filesHosts())
	leaf, err := pki.NewLeaf(inter, pki.LeafSpec{DNSNames: dns, IPs: ips, Lifetime: 24 * time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	leaf.CertPEM = append(leaf.CertPEM, inter.CertPEM...)
	writeSupplied(t, dir, append(append([]byte(nil), caPEM...), rootPEM...), leaf)
	if err := ensureFiles(o, now); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, FileLeafCert)); !bytes.Equal(got, leaf.CertPEM) {
		t.Fatal("a leaf chaining to ca.crt through an intermediate was re-issued")
	}
	if got, _ := os.ReadFile(filepath.Join(dir, FileCAKey)); !bytes.Equal(got, caKey) {
		t.Fatal("the CA was regenerated")
	}
}

// TestStoreRefusesEmptyBundle: a pair with no CA to verify it against (an
// empty ca.crt, the state a `cp` or `>` write passes through) is refused in
// every mode, and the served pair and bundle stay.
func TestStoreRefusesEmptyBundle(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now, time.Hour)
	st := newStore("test")
	good := mustLeaf(t, ca, []string{"localhost"}, now, time.Hour)
	if err := st.set(good, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	unrelated, _ := mustCA(t, now, time.Hour)
	keyOnly := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: []byte{1}})
	for name, bundle := range map[string][]byte{"nil": nil, "empty": {}, "white space": []byte("\n \n"), "no certificate": keyOnly} {
		if err := st.set(unrelated, bundle); err == nil || !strings.Contains(err.Error(), "CA bundle") {
			t.Errorf("%s bundle: set = %v, want an error about the CA bundle", name, err)
		}
	}
	if c, _ := st.GetCertificate(nil); !bytes.Equal(c.Certificate[0], firstDER(good.CertPEM)) {
		t.Fatal("served pair replaced")
	}
	if !bytes.Equal(st.CABundle(), ca.CertPEM) {
		t.Fatal("served bundle replaced")
	}
	if err := newStore("test").set(good, nil); err == nil {
		t.Fatal("first pair installed without a CA bundle")
	}
}

// TestFilesEmptyCACertRefused: files mode reading an empty ca.crt beside an
// unrelated pair keeps serving the previous pair and logs an error naming
// ca.crt.
func TestFilesEmptyCACertRefused(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs logSink
	src, err := Setup(ctx, nil, Options{Mode: ModeFiles, Dir: dir, CheckInterval: 10 * time.Millisecond}, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	first, _ := src.GetCertificate(nil)
	bundle := src.CABundle()
	unrelated, _ := mustCA(t, time.Now(), time.Hour)
	for _, w := range []struct {
		name string
		data []byte
	}{{FileCACert, nil}, {FileLeafKey, unrelated.KeyPEM}, {FileLeafCert, unrelated.CertPEM}} {
		if err := writeAtomic(filepath.Join(dir, w.name), w.data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	waitUntil(t, "an error naming the empty ca.crt", func() bool {
		return logs.find(`"error"`, filepath.Join(dir, FileCACert), "empty") != ""
	})
	if c, _ := src.GetCertificate(nil); !bytes.Equal(c.Certificate[0], first.Certificate[0]) {
		t.Fatal("a pair read with an empty ca.crt is served")
	}
	if !bytes.Equal(src.CABundle(), bundle) {
		t.Fatalf("served bundle changed to %d bytes", len(src.CABundle()))
	}
}

// TestClusterModesRefuseEmptyBundle: the same rule in self and cert-manager
// modes: a Secret whose ca.crt is empty installs nothing.
func TestClusterModesRefuseEmptyBundle(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now, time.Hour)
	leaf := mustLeaf(t, ca, []string{"localhost"}, now, time.Hour)
	data := map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM, "ca.crt": {}}

	t.Run("self", func(t *testing.T) {
		o, err := Options{Mode: ModeSelf, Namespace: "mg"}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		cs := kubefake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.selfLeafSecretName(), Namespace: o.Namespace}, Data: data})
		var logs logSink
		s := &selfSource{store: newStore(ModeSelf), o: o, log: logs.logger(), cs: cs, kick: newKicker()}
		s.watch = runWatch(t, cs, o.Namespace, o.selfLeafSecretName())
		s.load()
		if s.current() != nil {
			t.Fatal("a pair with an empty ca.crt was installed")
		}
		if logs.find(`"error"`, o.selfLeafSecretName(), "CA bundle") == "" {
			t.Fatalf("no error naming the Secret; logged %q", logs.lines)
		}
	})
	t.Run("cert-manager", func(t *testing.T) {
		o, err := Options{Mode: ModeCertManager, Namespace: "mg"}.withDefaults()
		if err != nil {
			t.Fatal(err)
		}
		cs := kubefake.NewClientset(&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: o.servingSecretName(), Namespace: o.Namespace}, Data: data})
		var logs logSink
		s := &cmSource{store: newStore(ModeCertManager), o: o, log: logs.logger(), kick: newKicker()}
		runSecretWatch(t, s, cs)
		s.load()
		if s.current() != nil {
			t.Fatal("a pair with an empty ca.crt and no CA Secret was installed")
		}
		if logs.find(`"error"`, o.servingSecretName(), "CA bundle") == "" {
			t.Fatalf("no error naming the Secret; logged %q", logs.lines)
		}
	})
}

// TestStorePendingDroppedWhenSourceUnchanged: a pair kept pending (not yet
// valid) is dropped once the source holds the served pair again, so it is
// never switched in at its NotBefore after the operator took it back.
func TestStorePendingDroppedWhenSourceUnchanged(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now.Add(-time.Hour), 100*time.Hour)
	st := newStore("test")
	st.now = func() time.Time { return now }
	a := mustLeaf(t, ca, []string{"localhost"}, now, time.Hour)
	if err := st.set(a, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	p := mustLeaf(t, ca, []string{"localhost"}, now.Add(2*time.Hour), time.Hour)
	if err := st.set(p, ca.CertPEM); err == nil {
		t.Fatal("a pair not valid yet was installed at once")
	}
	if !st.unchanged(a, ca.CertPEM) {
		t.Fatal("the served pair read again is not unchanged")
	}
	st.now = func() time.Time { return now.Add(3 * time.Hour) }
	if c := st.current(); !bytes.Equal(c.Certificate[0], firstDER(a.CertPEM)) {
		t.Fatal("the pending pair the source dropped was switched in at its NotBefore")
	}

	// A source holding something else leaves the pending pair alone.
	st.now = func() time.Time { return now }
	if err := st.set(p, ca.CertPEM); err == nil {
		t.Fatal("a pair not valid yet was installed at once")
	}
	if st.unchanged(p, ca.CertPEM) || st.unchanged(a, nil) {
		t.Fatal("unchanged for content other than the served pair")
	}
	st.now = func() time.Time { return now.Add(3 * time.Hour) }
	if c := st.current(); !bytes.Equal(c.Certificate[0], firstDER(p.CertPEM)) {
		t.Fatal("the pending pair was not served from its NotBefore")
	}
}

// TestFilesPendingDroppedOnRevert: files mode reads a pair not valid yet
// (kept pending), then the previous pair again: the pending pair is
// dropped, not served at its NotBefore.
func TestFilesPendingDroppedOnRevert(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := Setup(ctx, nil, Options{Mode: ModeFiles, Dir: dir, CheckInterval: 10 * time.Millisecond}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	st := src.(*store)
	a, err := readFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	caKey, _ := os.ReadFile(filepath.Join(dir, FileCAKey))
	p := mustLeaf(t, pki.KeyPair{CertPEM: a.ca, KeyPEM: caKey}, []string{"localhost"}, time.Now().Add(time.Hour), time.Hour)
	pending := func() bool { st.mu.RLock(); defer st.mu.RUnlock(); return st.pending != nil }
	writePair := func(cert, key []byte) {
		if err := writeAtomic(filepath.Join(dir, FileLeafKey), key, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := writeAtomic(filepath.Join(dir, FileLeafCert), cert, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePair(p.CertPEM, p.KeyPEM)
	waitUntil(t, "the new pair kept pending", pending)
	writePair(a.cert, a.key)
	waitUntil(t, "the pending pair dropped once the files hold the served pair again", func() bool { return !pending() })
	if c, _ := src.GetCertificate(nil); !bytes.Equal(c.Certificate[0], firstDER(a.cert)) {
		t.Fatal("served pair changed")
	}
}

// waitUntil polls cond until it holds or 10 s passed.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestClusterModesDropPendingOnRevert: self and cert-manager modes read their
// pair from a Secret: a pair not valid yet is kept pending; when the Secret
// holds the served pair again, the pending one is dropped (their load took a
// shortcut for the served leaf that left it pending, switched in at its
// NotBefore).
func TestClusterModesDropPendingOnRevert(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now.Add(-time.Hour), 100*time.Hour)
	served := mustLeaf(t, ca, []string{"localhost"}, now, time.Hour)
	future := mustLeaf(t, ca, []string{"localhost"}, now.Add(2*time.Hour), time.Hour)
	secretData := func(kp pki.KeyPair) map[string][]byte {
		return map[string][]byte{corev1.TLSCertKey: kp.CertPEM, corev1.TLSPrivateKeyKey: kp.KeyPEM, "ca.crt": ca.CertPEM}
	}
	for _, mode := range []string{ModeSelf, ModeCertManager} {
		t.Run(mode, func(t *testing.T) {
			o, err := Options{Mode: mode, Namespace: "mg"}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			name := o.selfLeafSecretName()
			if mode == ModeCertManager {
				name = o.servingSecretName()
			}
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: o.Namespace}, Data: secretData(served)}
			cs := kubefake.NewClientset(sec)
			var st *store
			var load func()
			var get func() *corev1.Secret
			if mode == ModeSelf {
				s := &selfSource{store: newStore(ModeSelf), o: o, log: logr.Discard(), cs: cs, kick: newKicker()}
				s.watch = runWatch(t, cs, o.Namespace, name)
				st, load, get = s.store, s.load, func() *corev1.Secret { return s.watch.get(name) }
			} else {
				s := &cmSource{store: newStore(ModeCertManager), o: o, log: logr.Discard(), kick: newKicker()}
				runSecretWatch(t, s, cs)
				st, load, get = s.store, s.load, func() *corev1.Secret { return s.watch.get(name) }
			}
			holds := func(kp pki.KeyPair) func() bool {
				return func() bool { s := get(); return s != nil && bytes.Equal(s.Data[corev1.TLSCertKey], kp.CertPEM) }
			}
			update := func(kp pki.KeyPair) {
				sec.Data = secretData(kp)
				if _, err := cs.CoreV1().Secrets(o.Namespace).Update(context.Background(), sec, metav1.UpdateOptions{}); err != nil {
					t.Fatal(err)
				}
				waitUntil(t, "the watch to see the update", holds(kp))
				load()
			}
			load()
			if c := st.current(); c == nil || !bytes.Equal(c.Certificate[0], firstDER(served.CertPEM)) {
				t.Fatal("the Secret's pair is not served")
			}
			update(future)
			st.mu.RLock()
			pending := st.pending != nil
			st.mu.RUnlock()
			if !pending {
				t.Fatal("a pair not valid yet was not kept pending")
			}
			update(served)
			st.now = func() time.Time { return now.Add(3 * time.Hour) }
			if c := st.current(); !bytes.Equal(c.Certificate[0], firstDER(served.CertPEM)) {
				t.Fatal("the pending pair the Secret no longer holds was switched in at its NotBefore")
			}
		})
	}
}
