package webhook

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrlwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/yaml"
)

// BenchmarkValidationWebhookConcurrent200 sends AdmissionReviews for a typical
// VirtualService over HTTPS on 127.0.0.1 to controller-runtime's webhook
// server with 200 concurrent clients and reports p50/p99 latency
// (docs/benchmarks.md "Validation").
func BenchmarkValidationWebhookConcurrent200(b *testing.B) {
	prep := envtest.WebhookInstallOptions{LocalServingHost: "127.0.0.1"}
	if err := prep.PrepWithoutInstalling(); err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(prep.LocalServingCertDir)
	srv := ctrlwebhook.NewServer(ctrlwebhook.Options{Host: prep.LocalServingHost, Port: prep.LocalServingPort, CertDir: prep.LocalServingCertDir})
	registerValidationMetrics()
	srv.Register(ValidatePath, &ctrlwebhook.Admission{Handler: &ValidationHandler{Log: logr.Discard()}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.Error(err)
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for srv.StartedChecker()(nil) != nil {
		if time.Now().After(deadline) {
			b.Fatal("webhook server did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(prep.LocalServingCAData)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, MaxIdleConnsPerHost: 200}}
	raw, err := yaml.YAMLToJSON([]byte(goodVS))
	if err != nil {
		b.Fatal(err)
	}
	body, _ := json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{UID: "u", Kind: metav1.GroupVersionKind{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
			Namespace: "default", Name: "reviews", Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw}},
	})
	url := fmt.Sprintf("https://%s:%d%s", prep.LocalServingHost, prep.LocalServingPort, ValidatePath)
	post := func() (time.Duration, error) {
		start := time.Now()
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(resp.Body).Decode(&review); err != nil {
			return 0, err
		}
		if review.Response == nil || !review.Response.Allowed {
			return 0, fmt.Errorf("unexpected response %+v", review.Response)
		}
		return time.Since(start), nil
	}
	if _, err := post(); err != nil { // warm up: compiles the CRD schemas
		b.Fatal(err)
	}
	const workers = 200
	b.ResetTimer()
	var mu sync.Mutex
	lat := make([]time.Duration, 0, b.N)
	var wg sync.WaitGroup
	next := make(chan struct{}, b.N)
	for i := 0; i < b.N; i++ {
		next <- struct{}{}
	}
	close(next)
	var firstErr error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				d, err := post()
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	if firstErr != nil {
		b.Fatal(firstErr)
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
