package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

// Istio's pkg/kube/inject/inject.go extractClusterAndNetwork: the network is
// values global.network, overridden by the URL path, overridden by the pod's
// explicit topology.istio.io/network label; the cluster is values
// global.multiCluster.clusterName unless the URL names one. Both, when set,
// are removed from their template position and appended in key order
// (updateClusterEnvs); the label is set to the network (applyMetadata).
func TestClusterAndNetworkEnv(t *testing.T) {
	for _, c := range []struct {
		name      string
		values    string
		label     *string
		url       map[string]string
		wantTail  []corev1.EnvVar // the last envs before ISTIO_KUBE_APP_PROBERS & co.
		wantLabel string
	}{
		{"defaults: cluster in template position, no network", `{}`, nil, nil,
			[]corev1.EnvVar{{Name: "TRUST_DOMAIN", Value: "cluster.local"}}, ""},
		{"values network", `{"global":{"network":"n1"}}`, nil, nil,
			[]corev1.EnvVar{{Name: "TRUST_DOMAIN", Value: "cluster.local"}, {Name: "ISTIO_META_NETWORK", Value: "n1"}}, "n1"},
		{"label beats values", `{"global":{"network":"n1"}}`, ptr("n2"), nil,
			[]corev1.EnvVar{{Name: "TRUST_DOMAIN", Value: "cluster.local"}, {Name: "ISTIO_META_NETWORK", Value: "n2"}}, "n2"},
		{"label beats the URL", `{}`, ptr("n2"), map[string]string{"ISTIO_META_NETWORK": "n3"},
			[]corev1.EnvVar{{Name: "TRUST_DOMAIN", Value: "cluster.local"}, {Name: "ISTIO_META_NETWORK", Value: "n2"}}, "n2"},
		{"values cluster name moved, sorted before the network", `{"global":{"network":"n1","multiCluster":{"clusterName":"c1"}}}`, nil, nil,
			[]corev1.EnvVar{{Name: "TRUST_DOMAIN", Value: "cluster.local"}, {Name: "ISTIO_META_CLUSTER_ID", Value: "c1"}, {Name: "ISTIO_META_NETWORK", Value: "n1"}}, "n1"},
		{"URL cluster beats values", `{"global":{"multiCluster":{"clusterName":"c1"}}}`, nil, map[string]string{"ISTIO_META_CLUSTER_ID": "c2"},
			[]corev1.EnvVar{{Name: "TRUST_DOMAIN", Value: "cluster.local"}, {Name: "ISTIO_META_CLUSTER_ID", Value: "c2"}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := config.Load(nil, []byte(c.values))
			if err != nil {
				t.Fatal(err)
			}
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", Labels: map[string]string{}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "app"}}},
			}
			if c.label != nil {
				pod.Labels[LabelNetwork] = *c.label
			}
			res, err := Inject(pod, "default", cfg, Options{ProxyEnv: c.url})
			if err != nil {
				t.Fatal(err)
			}
			var env []corev1.EnvVar
			for _, cs := range [][]corev1.Container{res.Pod.Spec.Containers, res.Pod.Spec.InitContainers} {
				for _, ct := range cs {
					if ct.Name == ProxyContainerName {
						env = ct.Env
					}
				}
			}
			clusterIDs := 0
			for _, e := range env {
				if e.Name == "ISTIO_META_CLUSTER_ID" {
					clusterIDs++
				}
			}
			if clusterIDs != 1 {
				t.Errorf("ISTIO_META_CLUSTER_ID appears %d times", clusterIDs)
			}
			if len(env) < len(c.wantTail) {
				t.Fatalf("env too short: %v", env)
			}
			tail := env[len(env)-len(c.wantTail):]
			for i := range c.wantTail {
				if tail[i].Name != c.wantTail[i].Name || tail[i].Value != c.wantTail[i].Value {
					t.Fatalf("env ends with %v, want %v", tail, c.wantTail)
				}
			}
			if got := res.Pod.Labels[LabelNetwork]; got != c.wantLabel {
				t.Errorf("label %s = %q, want %q", LabelNetwork, got, c.wantLabel)
			}
		})
	}
}
