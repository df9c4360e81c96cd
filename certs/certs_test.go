package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"

	"github.com/meshguard/meshguard/certs/pki"
	"github.com/meshguard/meshguard/internal/manifest"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func mustCA(t *testing.T, now time.Time, life time.Duration) (pki.KeyPair, *x509.Certificate) {
	t.Helper()
	ca, err := pki.NewCA("ca", now, life)
	if err != nil {
		t.Fatal(err)
	}
	c, err := ca.Parsed()
	if err != nil {
		t.Fatal(err)
	}
	return ca, c.Leaf
}

func mustLeaf(t *testing.T, ca pki.KeyPair, dns []string, now time.Time, life time.Duration) pki.KeyPair {
	t.Helper()
	l, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: dns, Lifetime: life}, now)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestDecideLeaf(t *testing.T) {
	ca, caCert := mustCA(t, t0, 1000*time.Hour)
	newCA, newCACert := mustCA(t, t0, 1000*time.Hour)
	_ = newCA
	dns := []string{"mg.ns.svc"}
	leaf := mustLeaf(t, ca, dns, t0, 90*time.Hour) // NotBefore t0-5m, NotAfter t0+90h
	info := leafState(&corev1.Secret{Data: map[string][]byte{
		corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM, "ca.crt": ca.CertPEM}})
	corrupt := leafState(&corev1.Secret{Data: map[string][]byte{corev1.TLSCertKey: []byte("x")}})
	// A leaf still naming a SAN no longer wanted (a --cert-extra-san removed).
	wideKP := mustLeaf(t, ca, []string{"mg.ns.svc", "gone.example"}, t0, 90*time.Hour)
	wide := leafState(&corev1.Secret{Data: map[string][]byte{
		corev1.TLSCertKey: wideKP.CertPEM, corev1.TLSPrivateKeyKey: wideKP.KeyPEM, "ca.crt": ca.CertPEM}})
	cases := []struct {
		name   string
		l      *leafInfo
		ca     *x509.Certificate
		bundle []byte
		dns    []string
		now    time.Time
		want   leafAction
		life   time.Duration // --cert-duration; 0: the leaf's own 90h
	}{
		{"absent", nil, caCert, ca.CertPEM, dns, t0, leafReissue, 0},
		{"corrupt", corrupt, caCert, ca.CertPEM, dns, t0, leafReissue, 0},
		{"fresh", info, caCert, ca.CertPEM, dns, t0.Add(time.Hour), leafKeep, 0},
		{"just before 2/3", info, caCert, ca.CertPEM, dns, t0.Add(59 * time.Hour), leafKeep, 0},
		{"at 2/3", info, caCert, ca.CertPEM, dns, t0.Add(61 * time.Hour), leafReissue, 0},
		// cert-manager renews once the renewal time is reached, not after it
		// (policies.CurrentCertificateNearingExpiry: renewIn <= 0).
		{"at the renewal time exactly", info, caCert, ca.CertPEM, dns, pki.RenewalTime(info.leaf.NotBefore, info.leaf.NotAfter, 0), leafReissue, 0},
		{"expired", info, caCert, ca.CertPEM, dns, t0.Add(91 * time.Hour), leafReissue, 0},
		{"names changed", info, caCert, ca.CertPEM, []string{"other.ns.svc"}, t0, leafReissue, 0},
		{"name removed", wide, caCert, ca.CertPEM, dns, t0, leafReissue, 0},
		// The old leaf still serves the unchanged names: its replacement, from
		// the new CA, waits until that CA is trusted.
		{"names changed and CA rotated", info, newCACert, append(append([]byte{}, ca.CertPEM...), newCA.CertPEM...), []string{"other.ns.svc"}, t0, leafReissueNewCA, 0},
		{"CA rotated", info, newCACert, append(append([]byte{}, ca.CertPEM...), newCA.CertPEM...), dns, t0, leafReissueNewCA, 0},
		{"bundle grew", info, caCert, append(append([]byte{}, ca.CertPEM...), newCA.CertPEM...), dns, t0, leafUpdateBundle, 0},
		// --cert-duration lowered to 24h: the 90h leaf outlives a new one.
		{"duration shortened", info, caCert, ca.CertPEM, dns, t0.Add(time.Hour), leafReissue, 24 * time.Hour},
		// Lowered by a third (90h to 60h): past the tenth of slack, re-issued.
		{"duration shortened by a third", info, caCert, ca.CertPEM, dns, t0.Add(time.Hour), leafReissue, 60 * time.Hour},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.life == 0 {
				c.life = 90 * time.Hour
			}
			got := decideLeaf(c.l, c.ca, c.bundle, c.dns, nil, c.life, 0, c.now)
			if got.action != c.want {
				t.Fatalf("action = %d (%s), want %d", got.action, got.reason, c.want)
			}
		})
	}
}

func TestCARenewalReason(t *testing.T) {
	ca, _ := mustCA(t, t0, 30*time.Hour)
	leafCA := mustLeaf(t, ca, []string{"x"}, t0, time.Hour)
	cases := []struct {
		name string
		kp   pki.KeyPair
		now  time.Time
		want string
		life time.Duration // --cert-ca-duration; 0: the CA's own 30h
	}{
		{"fresh", ca, t0.Add(time.Hour), "", 0},
		{"due at 2/3", ca, t0.Add(20 * time.Hour), "due for renewal", 0},
		{"not a CA", leafCA, t0, "not a CA", 0},
		{"garbage", pki.KeyPair{CertPEM: []byte("x")}, t0, "unreadable", 0},
		// --cert-ca-duration lowered to 10h: the 30h CA outlives a new one.
		{"duration shortened", ca, t0.Add(time.Hour), "duration shortened", 10 * time.Hour},
		{"duration within slack", ca, t0.Add(time.Hour), "", 27 * time.Hour},
	}
	for _, c := range cases {
		if c.life == 0 {
			c.life = 30 * time.Hour
		}
		if got := caRenewalReason(c.kp, c.life, 0, c.now); !strings.HasPrefix(got, c.want) || (c.want == "" && got != "") {
			t.Errorf("%s: got %q want %q", c.name, got, c.want)
		}
	}
}

func TestOptionsValidation(t *testing.T) {
	cases := []struct {
		name    string
		o       Options
		wantErr string
	}{
		{"bad mode", Options{Mode: "vault", Namespace: "ns"}, `--cert-mode "vault"`},
		{"files needs dir", Options{Mode: ModeFiles}, "--cert-dir"},
		{"self needs namespace", Options{Mode: ModeSelf}, "--namespace"},
		{"renew before too long", Options{Mode: ModeSelf, Namespace: "ns", LeafDuration: time.Hour, LeafRenewBefore: 2 * time.Hour}, "--cert-renew-before"},
		{"negative check interval", Options{Mode: ModeFiles, Dir: "d", CheckInterval: -time.Second}, "--cert-check-interval -1s: must not be negative"},
		{"negative duration", Options{Mode: ModeSelf, Namespace: "ns", LeafDuration: -time.Hour}, "--cert-duration"},
		{"ok", Options{Mode: ModeSelf, Namespace: "ns"}, ""},
	}
	for _, c := range cases {
		_, err := c.o.withDefaults()
		if c.wantErr == "" && err != nil || c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.wantErr)
		}
	}
	o, _ := Options{Mode: ModeSelf, Namespace: "ns", Revision: "canary"}.withDefaults()
	if o.WebhookConfigs.Mutating[0] != "meshguard-sidecar-injector-canary" || o.WebhookConfigs.Validating[0] != "meshguard-validator-canary" {
		t.Errorf("webhook config names = %+v", o.WebhookConfigs)
	}
	if got := InjectCAFrom(Options{Namespace: "mg"}); got != "mg/meshguard-ca" {
		t.Errorf("InjectCAFrom = %q", got)
	}
	if got := strings.Join(Options{Namespace: "mg", ServiceName: "s", Hosts: []string{"127.0.0.1"}}.DNSNames(), ","); got != "s.mg.svc,s.mg.svc.cluster.local,127.0.0.1" {
		t.Errorf("DNSNames = %q", got)
	}
}

func TestCertManagerObjects(t *testing.T) {
	objs := CertManagerObjects(Options{Namespace: "mg", ServiceName: "svc", Hosts: []string{"127.0.0.1"}, LeafDuration: 2 * time.Hour})
	if len(objs) != 4 {
		t.Fatalf("got %d objects", len(objs))
	}
	names := []string{}
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if got := strings.Join(names, ","); got != "meshguard-selfsigned,meshguard-ca,meshguard-ca,meshguard-serving" {
		t.Fatalf("names = %s", got)
	}
}

// TestStoreServesNotYetValidPairFromNotBefore: a pair whose certificate is
// not valid yet does not replace a valid one (the handshakes would fail, the
// pod turn unready); it is served from its NotBefore on. With nothing valid
// served it is installed at once, as there is nothing better.
func TestStoreServesNotYetValidPairFromNotBefore(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	ca, _ := mustCA(t, now.Add(-time.Hour), 48*time.Hour)
	good := mustLeaf(t, ca, []string{"localhost"}, now, time.Hour)
	future := mustLeaf(t, ca, []string{"localhost"}, now.Add(3*time.Hour), 6*time.Hour)
	goodCert, _ := good.Parsed()
	futureCert, _ := future.Parsed()
	if !now.Before(futureCert.Leaf.NotBefore) {
		t.Fatalf("test certificate valid from %s, not after now", futureCert.Leaf.NotBefore)
	}
	st := newStore("test")
	st.now = clock
	if err := st.set(good, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	if err := st.set(future, ca.CertPEM); err == nil || !strings.Contains(err.Error(), "is valid from") {
		t.Errorf("not-yet-valid pair: err = %v, want it kept pending", err)
	}
	serving := func() *x509.Certificate {
		t.Helper()
		c, err := st.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf
	}
	if got := serving(); !got.Equal(goodCert.Leaf) {
		t.Errorf("before its NotBefore the new pair is served (serial %s)", got.SerialNumber)
	}
	if err := st.Ready(nil); err != nil {
		t.Errorf("not ready while the valid pair is served: %v", err)
	}
	now = futureCert.Leaf.NotBefore
	if got := serving(); !got.Equal(futureCert.Leaf) {
		t.Errorf("at its NotBefore the pending pair is not served (serial %s)", got.SerialNumber)
	}
	if got, want := testutil.ToFloat64(expiryGauge.WithLabelValues("test")), float64(futureCert.Leaf.NotAfter.Unix()); got != want {
		t.Errorf("%s = %v, want %v (the promoted pair's)", ExpiryMetricName, got, want)
	}

	now = time.Now()
	empty := newStore("test")
	empty.now = clock
	if err := empty.set(future, ca.CertPEM); err != nil {
		t.Fatalf("with nothing served, a not-yet-valid pair is refused: %v", err)
	}
	if err := empty.Ready(nil); err == nil || !strings.Contains(err.Error(), "not now") {
		t.Errorf("ready with a certificate not valid yet: %v", err)
	}
}

func TestStoreReadyAndTLS(t *testing.T) {
	st := newStore("test")
	if err := st.Ready(nil); err == nil {
		t.Fatal("ready before load")
	}
	if _, err := st.GetCertificate(nil); err == nil {
		t.Fatal("certificate before load")
	}
	now := time.Now()
	ca, _ := mustCA(t, now, time.Hour)
	leaf, err := pki.NewLeaf(ca, pki.LeafSpec{DNSNames: []string{"localhost"}, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Lifetime: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	expiredCA, _ := mustCA(t, now.Add(-3*time.Hour), time.Hour)
	expired := mustLeaf(t, expiredCA, []string{"localhost"}, now.Add(-3*time.Hour), time.Hour)
	if err := st.set(expired, expiredCA.CertPEM); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired pair accepted: %v", err)
	}
	if err := st.set(leaf, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	if err := st.Ready(nil); err != nil {
		t.Fatalf("not ready: %v", err)
	}
	want := float64(st.current().Leaf.NotAfter.Unix())
	if got := testutil.ToFloat64(expiryGauge.WithLabelValues("test")); got != want {
		t.Errorf("%s = %v, want %v", ExpiryMetricName, got, want)
	}

	// mTLS: a client certificate from the bundle's CA passes, another CA's fails.
	ln := serveTLSOK(t, st.TLSConfig(true))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca.CertPEM)
	dial := func(client pki.KeyPair) error {
		cert, err := client.Parsed()
		if err != nil {
			return err
		}
		conn, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{*cert}})
		if err != nil {
			return err
		}
		defer conn.Close()
		buf := make([]byte, 2)
		_, err = conn.Read(buf)
		return err
	}
	if err := dial(mustLeaf(t, ca, []string{"client"}, now, time.Hour)); err != nil {
		t.Fatalf("trusted client rejected: %v", err)
	}
	otherCA, _ := mustCA(t, now, time.Hour)
	if err := dial(mustLeaf(t, otherCA, []string{"client"}, now, time.Hour)); err == nil {
		t.Fatal("untrusted client accepted")
	}
}

func TestFilesMode(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := Options{Mode: ModeFiles, Dir: dir, CheckInterval: 50 * time.Millisecond}
	src, err := Setup(ctx, nil, o, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Ready(nil); err != nil {
		t.Fatalf("not ready right after Setup: %v", err)
	}
	first, _ := src.GetCertificate(nil)
	if err := pki.VerifyLeaf(first.Leaf, src.CABundle(), "127.0.0.1", time.Now()); err != nil {
		t.Fatalf("bundle does not verify leaf: %v", err)
	}
	for _, f := range []string{FileCACert, FileCAKey, FileLeafCert, FileLeafKey} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}

	// A second Setup on the same directory reuses the pair.
	src2, err := Setup(ctx, nil, o, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := src2.GetCertificate(nil); string(c.Leaf.Raw) != string(first.Leaf.Raw) {
		t.Fatal("existing valid pair was regenerated")
	}

	// Rewriting the files with a new leaf is picked up.
	caPEM, _ := os.ReadFile(filepath.Join(dir, FileCACert))
	caKey, _ := os.ReadFile(filepath.Join(dir, FileCAKey))
	leaf := mustLeaf(t, pki.KeyPair{CertPEM: caPEM, KeyPEM: caKey}, []string{"localhost"}, time.Now(), time.Hour)
	if err := writeAtomic(filepath.Join(dir, FileLeafKey), leaf.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(filepath.Join(dir, FileLeafCert), leaf.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _ := src.GetCertificate(nil)
		if string(c.Certificate[0]) == string(firstDER(leaf.CertPEM)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("rewritten files were not reloaded")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// A leaf that does not cover a newly wanted SAN is re-issued at start.
	o.Hosts = []string{"dev.example"}
	src3, err := Setup(ctx, nil, o, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := src3.GetCertificate(nil); !pki.CoversNames(c.Leaf, []string{"dev.example", "localhost"}, nil) {
		t.Fatalf("leaf SANs %v lack dev.example", c.Leaf.DNSNames)
	}
}

func TestAddFlags(t *testing.T) {
	var o Options
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	o.AddFlags(fs)
	err := fs.Parse([]string{"--cert-mode=self", "--cert-dir=/d", "--service-name=mg", "--namespace=sys",
		"--cert-extra-san=127.0.0.1,localhost", "--tls-verify-client", "--cert-duration=2h", "--cert-renew-before=30m"})
	if err != nil {
		t.Fatal(err)
	}
	if o.Mode != ModeSelf || o.Dir != "/d" || o.ServiceName != "mg" || o.Namespace != "sys" ||
		strings.Join(o.Hosts, ",") != "127.0.0.1,localhost" || !o.ClientCAVerify ||
		o.LeafDuration != 2*time.Hour || o.LeafRenewBefore != 30*time.Minute {
		t.Fatalf("parsed %+v", o)
	}

	// --namespace already defined by serve: AddFlags must not redefine it (pflag would panic).
	var o2 Options
	fs2 := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	var podNS string
	fs2.StringVar(&podNS, "namespace", "", "pod namespace")
	o2.AddFlags(fs2)
	if err := fs2.Parse([]string{"--namespace=x"}); err != nil || podNS != "x" || o2.Namespace != "" {
		t.Fatalf("shared --namespace: err=%v podNS=%q o.Namespace=%q", err, podNS, o2.Namespace)
	}
}

func TestModeOf(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	src, err := Setup(ctx, nil, Options{Mode: ModeFiles, Dir: t.TempDir()}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if got := ModeOf(src); got != ModeFiles {
		t.Fatalf("ModeOf = %q", got)
	}
	if got := ModeOf(&selfSource{}); got != ModeSelf {
		t.Fatalf("ModeOf(self) = %q", got)
	}
	if got := ModeOf(&cmSource{}); got != ModeCertManager {
		t.Fatalf("ModeOf(cert-manager) = %q", got)
	}
}

// TestClientVerificationOnResumption: a client whose CA left the bundle is
// refused on a resumed session too (Go skips VerifyPeerCertificate when a
// session ticket resumes; VerifyConnection runs on every connection).
func TestClientVerificationOnResumption(t *testing.T) {
	st := newStore("test")
	now := time.Now()
	serverCA, _ := mustCA(t, now, time.Hour)
	clientCA, _ := mustCA(t, now, time.Hour)
	leaf, err := pki.NewLeaf(serverCA, pki.LeafSpec{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Lifetime: time.Hour}, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.set(leaf, append(append([]byte(nil), serverCA.CertPEM...), clientCA.CertPEM...)); err != nil {
		t.Fatal(err)
	}
	ln := serveTLSOK(t, st.TLSConfig(true))
	clientCert, err := mustLeaf(t, clientCA, []string{"client"}, now, time.Hour).Parsed()
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(serverCA.CertPEM)
	cfg := &tls.Config{RootCAs: roots, ServerName: "127.0.0.1", Certificates: []tls.Certificate{*clientCert},
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	dial := func() (resumed bool, err error) {
		conn, err := tls.Dial("tcp", ln.Addr().String(), cfg)
		if err != nil {
			return false, err
		}
		defer conn.Close()
		buf := make([]byte, 2)
		_, err = conn.Read(buf) // also takes in the TLS 1.3 session ticket
		return conn.ConnectionState().DidResume, err
	}
	if _, err := dial(); err != nil {
		t.Fatalf("trusted client rejected: %v", err)
	}
	// The client's CA leaves the bundle.
	if err := st.set(leaf, serverCA.CertPEM); err != nil {
		t.Fatal(err)
	}
	if resumed, err := dial(); err == nil {
		t.Fatalf("client of a CA no longer in the bundle accepted (resumed session: %v)", resumed)
	}
}

// TestFilesReadBounded: the files-mode reads stop at the size every other
// input path accepts (manifest.DefaultMaxInputBytes) instead of reading a
// file, or /dev/zero behind a symlink, whole every CheckInterval.
func TestFilesReadBounded(t *testing.T) {
	dir := t.TempDir()
	ca, _ := mustCA(t, time.Now(), time.Hour)
	leaf := mustLeaf(t, ca, []string{"localhost"}, time.Now(), time.Hour)
	big := append(append([]byte(nil), leaf.CertPEM...), bytes.Repeat([]byte("\n"), manifest.DefaultMaxInputBytes)...)
	for name, data := range map[string][]byte{FileCACert: ca.CertPEM, FileLeafCert: big, FileLeafKey: leaf.KeyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := readFiles(dir); !errors.Is(err, manifest.ErrTooLarge) {
		t.Fatalf("readFiles of a %d-byte tls.crt: %v, want %v", len(big), err, manifest.ErrTooLarge)
	}
	if _, err := readPair(filepath.Join(dir, FileLeafCert), filepath.Join(dir, FileLeafKey)); !errors.Is(err, manifest.ErrTooLarge) {
		t.Fatalf("readPair of a %d-byte tls.crt: %v, want %v", len(big), err, manifest.ErrTooLarge)
	}
}

// TestFilesReadRefusesNonRegular: a FIFO (or a device) in the certificate
// directory is refused, not opened: opening a FIFO blocks until a writer comes.
func TestFilesReadRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, FileLeafCert)
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := readFile(fifo)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Fatalf("readFile of a FIFO: %v, want not a regular file", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("readFile of a FIFO blocked")
	}
	if _, err := readFile("/dev/null"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("readFile of /dev/null: %v, want not a regular file", err)
	}
}

// TestEnsureFilesRenewsAtStart: files mode re-issues at start what self mode
// would renew (pki.RenewalTime, 2/3 of the life by default), not only what
// has expired: it does not renew while running, so a leaf kept with minutes
// left would expire under a dev session started just before.
func TestEnsureFilesRenewsAtStart(t *testing.T) {
	for _, c := range []struct {
		name      string
		age       time.Duration // of the CA and leaf at the restart, both 3 h long
		wantLeaf  bool          // a new leaf
		wantNewCA bool
		caDur     time.Duration // --cert-ca-duration at the restart; 0: 3h
		leafDur   time.Duration // --cert-duration at the restart; 0: 3h
		leafRenew time.Duration // --cert-renew-before at the restart; 0: 2/3
	}{
		{"fresh", time.Hour, false, false, 0, 0, 0},
		{"past 2/3", 2*time.Hour + 10*time.Minute, true, true, 0, 0, 0},
		{"leaf duration shortened", time.Minute, true, false, 0, time.Hour, 0},
		{"CA duration shortened", time.Minute, true, true, time.Hour, time.Hour, 0},
		// The leaf alone is due (renewBefore 2h of its 3h): a new leaf from the same CA.
		{"leaf due, CA not", time.Hour + 10*time.Minute, true, false, 0, 0, 2 * time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			o, err := Options{Mode: ModeFiles, Dir: dir, CADuration: 3 * time.Hour, LeafDuration: 3 * time.Hour}.withDefaults()
			if err != nil {
				t.Fatal(err)
			}
			if err := ensureFiles(o, t0); err != nil {
				t.Fatal(err)
			}
			before, _ := readFiles(dir)
			if c.caDur != 0 {
				o.CADuration, o.CARenewBefore = c.caDur, 0
			}
			if c.leafDur != 0 {
				o.LeafDuration, o.LeafRenewBefore = c.leafDur, 0
			}
			if c.leafRenew != 0 {
				o.LeafRenewBefore = c.leafRenew
			}
			if o, err = o.withDefaults(); err != nil {
				t.Fatal(err)
			}
			if err := ensureFiles(o, t0.Add(c.age)); err != nil {
				t.Fatal(err)
			}
			after, _ := readFiles(dir)
			if got := !bytes.Equal(before.cert, after.cert); got != c.wantLeaf {
				t.Errorf("new leaf = %v, want %v", got, c.wantLeaf)
			}
			if got := !bytes.Equal(before.ca, after.ca); got != c.wantNewCA {
				t.Errorf("new CA = %v, want %v", got, c.wantNewCA)
			}
		})
	}
}

// serveTLSOK accepts TLS connections with cfg on 127.0.0.1 until the test
// ends, writing "ok" to each client whose handshake succeeded.
func serveTLSOK(t *testing.T, cfg *tls.Config) net.Listener {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				if c.(*tls.Conn).Handshake() == nil {
					_, _ = c.Write([]byte("ok"))
				}
			}()
		}
	}()
	return ln
}

// TestFilesReloadReadErrorLogged: a file of the pair that cannot be read
// (removed, or refused: too large, a FIFO) stops the reloads; that is logged,
// once, instead of the poll skipping it silently on every tick.
func TestFilesReloadReadErrorLogged(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logged := make(chan string, 16)
	log := funcr.New(func(_, args string) {
		if strings.Contains(args, `"error"`) {
			logged <- args
		}
	}, funcr.Options{})
	if _, err := Setup(ctx, nil, Options{Mode: ModeFiles, Dir: dir, CheckInterval: 10 * time.Millisecond}, log); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, FileLeafKey)); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-logged:
		if !strings.Contains(msg, FileLeafKey) {
			t.Errorf("logged %s, want the error naming %s", msg, FileLeafKey)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unreadable certificate file was never logged")
	}
	// Once: a tick repeating the same error adds nothing. Wait for a
	// later poll to have run: a new key file seen is a different error
	// (the pair mismatched), logged too.
	caPEM, _ := os.ReadFile(filepath.Join(dir, FileCACert))
	caKey, _ := os.ReadFile(filepath.Join(dir, FileCAKey))
	other := mustLeaf(t, pki.KeyPair{CertPEM: caPEM, KeyPEM: caKey}, []string{"localhost"}, time.Now(), time.Hour)
	if err := writeAtomic(filepath.Join(dir, FileLeafKey), other.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case msg := <-logged:
		if strings.Contains(msg, "read serving certificate files") {
			t.Errorf("the same read error was logged again: %s", msg)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the mismatched pair was not logged")
	}
}

// A pair whose leaf does not chain to the bundle beside it is refused and the
// served pair and bundle stay (a ca.crt replaced alone, or read between a
// rotation's renames); a bundle of both CAs, as in a CA rotation, passes.
func TestStoreRefusesBundleNotVerifyingLeaf(t *testing.T) {
	now := time.Now()
	ca, _ := mustCA(t, now.Add(-time.Hour), 48*time.Hour)
	other, _ := mustCA(t, now.Add(-time.Hour), 48*time.Hour)
	leaf := mustLeaf(t, ca, []string{"localhost"}, now, time.Hour)
	st := newStore("test")
	if err := st.set(leaf, ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	if err := st.set(leaf, other.CertPEM); err == nil || !strings.Contains(err.Error(), "does not verify against the CA bundle") {
		t.Errorf("leaf with another CA's bundle: err = %v, want refused", err)
	}
	if got := st.CABundle(); !bytes.Equal(got, ca.CertPEM) {
		t.Errorf("bundle after the refused set: %q, want the first CA's", got)
	}
	c, err := st.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pki.VerifyLeaf(c.Leaf, st.CABundle(), "localhost", now); err != nil {
		t.Errorf("served leaf does not verify against the served bundle: %v", err)
	}
	both := append(append([]byte(nil), other.CertPEM...), ca.CertPEM...)
	if err := st.set(leaf, both); err != nil {
		t.Errorf("bundle holding the leaf's CA among others: %v", err)
	}
	if err := newStore("test").set(leaf, other.CertPEM); err == nil {
		t.Error("first load with a bundle not verifying the leaf accepted")
	}
}
