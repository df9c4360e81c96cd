// Command inject is a bounded load test for meshguard's /inject webhook: N
// concurrent clients send AdmissionReviews over HTTPS to 127.0.0.1 for a fixed
// duration, then throughput and latency percentiles are printed. By default
// it serves the real handler in-process (TLS on 127.0.0.1, random port); with
// -url it targets a running meshguard instead.
//
//	go run ./test/load/inject -concurrency 200 -duration 30s
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/webhook"
)

type options struct {
	concurrency int
	duration    time.Duration
	envs        int
	url         string
}

type report struct {
	Requests   int64
	Errors     int64
	FirstError string
	Elapsed    time.Duration
	P50, P90   time.Duration
	P99, Max   time.Duration
}

func (r report) String() string {
	return fmt.Sprintf("requests=%d errors=%d elapsed=%s throughput=%.0f/s p50=%s p90=%s p99=%s max=%s",
		r.Requests, r.Errors, r.Elapsed.Round(time.Millisecond), float64(r.Requests)/r.Elapsed.Seconds(),
		r.P50, r.P90, r.P99, r.Max)
}

func main() {
	var o options
	flag.IntVar(&o.concurrency, "concurrency", 20, "concurrent clients")
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long to send requests (bounded: at most 10m)")
	flag.IntVar(&o.envs, "envs", 0, "env vars in the app container of the test pod")
	flag.StringVar(&o.url, "url", "", "target https://127.0.0.1:PORT/inject of a running meshguard (TLS not verified); default: in-process server")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	r, err := run(context.Background(), o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	fmt.Printf("concurrency=%d envs=%d %s\n", o.concurrency, o.envs, r)
	if r.Errors > 0 {
		fmt.Fprintln(os.Stderr, "first error:", r.FirstError)
		os.Exit(1)
	}
}

func reviewBody(envs int) ([]byte, error) {
	c := corev1.Container{Name: "app", Image: "example.com/app:1", Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}}}
	for i := 0; i < envs; i++ {
		c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: "value"})
	}
	pod := corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{GenerateName: "load-", Namespace: "load", Labels: map[string]string{"app": "load"}},
		Spec:       corev1.PodSpec{ServiceAccountName: "default", Containers: []corev1.Container{c}},
	}
	raw, err := json.Marshal(pod)
	if err != nil {
		return nil, err
	}
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: "load", Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
			Resource: metav1.GroupVersionResource{Version: "v1", Resource: "pods"}, Namespace: "load",
			Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: raw},
		},
	})
}

func run(ctx context.Context, o options) (report, error) {
	if o.concurrency < 1 || o.concurrency > 10000 {
		return report{}, fmt.Errorf("-concurrency %d out of range 1-10000", o.concurrency)
	}
	if o.duration <= 0 || o.duration > 10*time.Minute {
		return report{}, fmt.Errorf("-duration %s out of range (0, 10m]", o.duration)
	}
	body, err := reviewBody(o.envs)
	if err != nil {
		return report{}, err
	}
	url := o.url
	tr := &http.Transport{MaxIdleConnsPerHost: o.concurrency, ForceAttemptHTTP2: true}
	if url == "" {
		srv := httptest.NewUnstartedServer(webhook.NewInjectHTTPHandler(&webhook.InjectHandler{Config: webhook.NewConfigStore(config.Default()), Log: logr.Discard()}, 0))
		srv.EnableHTTP2 = true
		srv.StartTLS() // listens on 127.0.0.1
		defer srv.Close()
		url = srv.URL + webhook.InjectPath
		tr.TLSClientConfig = srv.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	} else {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // load test against a local server
	}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()

	ctx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	var (
		wg        sync.WaitGroup
		errs      atomic.Int64
		firstErr  atomic.Value
		mu        sync.Mutex
		latencies []time.Duration
	)
	start := time.Now()
	for i := 0; i < o.concurrency; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 1024)
			for ctx.Err() == nil {
				t0 := time.Now()
				err := once(client, url, body)
				if ctx.Err() != nil && err != nil {
					break // cut off by the deadline, not a server error
				}
				local = append(local, time.Since(t0))
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			mu.Lock()
			latencies = append(latencies, local...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	r := report{Requests: int64(len(latencies)), Errors: errs.Load(), Elapsed: time.Since(start)}
	if s, ok := firstErr.Load().(string); ok {
		r.FirstError = s
	}
	if len(latencies) == 0 {
		return r, errors.New("no request completed")
	}
	sort.Slice(latencies, func(i, j int) bool { return latencies[i] < latencies[j] })
	pct := func(p float64) time.Duration { return latencies[int(p*float64(len(latencies)-1))] }
	r.P50, r.P90, r.P99, r.Max = pct(0.50), pct(0.90), pct(0.99), latencies[len(latencies)-1]
	return r, nil
}

func once(client *http.Client, url string, body []byte) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, data)
	}
	var ar admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &ar); err != nil {
		return err
	}
	if ar.Response == nil || !ar.Response.Allowed || len(ar.Response.Patch) == 0 {
		return fmt.Errorf("unexpected response: %s", data)
	}
	return nil
}
