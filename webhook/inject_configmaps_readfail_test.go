package webhook

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshguard/meshguard/injector/config"
	"github.com/meshguard/meshguard/reload"
)

// failingReader fails its first `fails` Gets as an API server timeout would.
type failingReader struct {
	client.Reader
	fails atomic.Int32
}

func (r *failingReader) Get(ctx context.Context, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
	if r.fails.Add(-1) >= 0 {
		return errors.New("etcdserver: request timed out")
	}
	return r.Reader.Get(ctx, key, obj, opts...)
}

// A reload that cannot read Istio's ConfigMaps is retried, and is not a
// rejected config: it neither counts in
// meshguard_config_reload_errors_total{source="injector-config"} nor reaches
// the Store's OnReject (serve's InjectorConfigRejected Event). A config that
// is read and fails validation still does.
func TestConfigMapReadFailureIsNotARejectedConfig(t *testing.T) {
	cm := func(name string, data map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "istio-system", Name: name}, Data: data}
	}
	for _, tc := range []struct {
		name        string
		values      string
		wantRejects int
	}{
		{"valid after two failed reads", `{"global":{"hub":"example.com/istio"}}`, 0},
		{"invalid after two failed reads", `{"global":{"proxy":{"statusPort":70000}}}`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &failingReader{Reader: fake.NewClientBuilder().WithObjects(
				cm("istio-sidecar-injector", map[string]string{"config": "policy: enabled\n", "values": tc.values})).Build()}
			r.fails.Store(2)
			var mu sync.Mutex
			var rejects []error
			store := reload.NewStore(config.Default(), reload.Reporting{Source: reload.InjectorConfig, OnReject: func(err error) {
				mu.Lock()
				rejects = append(rejects, err)
				mu.Unlock()
			}})
			done := make(chan error, 1)
			run, err := NewIstioConfigMapWatcher(IstioConfigMaps{Namespace: "istio-system", Reader: r}, &rest.Config{Host: "http://127.0.0.1:1"},
				store, time.Millisecond, logr.Discard(), func(err error) {
					if r.fails.Load() < 0 { // the ConfigMaps were read
						select {
						case done <- err:
						default:
						}
					}
				})
			if err != nil {
				t.Fatal(err)
			}
			trig := run.(*configMapTrigger)
			trig.retryMin = time.Millisecond
			before := testutil.ToFloat64(reload.ReloadErrorsTotal.WithLabelValues(string(reload.InjectorConfig)))
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go trig.run(ctx, make(chan struct{}, 1))
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the ConfigMaps were never read")
			}
			cancel()
			mu.Lock()
			defer mu.Unlock()
			if len(rejects) != tc.wantRejects {
				t.Errorf("OnReject called %d times (%v), want %d", len(rejects), rejects, tc.wantRejects)
			}
			if got := testutil.ToFloat64(reload.ReloadErrorsTotal.WithLabelValues(string(reload.InjectorConfig))) - before; got != float64(tc.wantRejects) {
				t.Errorf("reload errors counted %v, want %d", got, tc.wantRejects)
			}
			if tc.wantRejects == 0 && store.Load().Values.Global.Hub != "example.com/istio" {
				t.Errorf("hub %q after the successful read", store.Load().Values.Global.Hub)
			}
		})
	}
}
