package main

import (
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestManagerCacheOptions: the manager's informers keep objects without
// their managedFields (everything else intact), and nodes only as /inject
// reads them.
func TestManagerCacheOptions(t *testing.T) {
	o := managerCacheOptions()
	mf := []metav1.ManagedFieldsEntry{{Manager: "kubectl", Operation: metav1.ManagedFieldsOperationApply,
		FieldsV1: metav1.NewFieldsV1(`{"f:metadata":{"f:labels":{"f:app":{}}}}`)}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", Labels: map[string]string{"app": "web"}, ManagedFields: mf},
		Status: corev1.PodStatus{PodIP: "10.0.0.1"}}
	out, err := o.DefaultTransform(pod)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Pod)
	if len(got.ManagedFields) != 0 {
		t.Errorf("managedFields kept: %v", got.ManagedFields)
	}
	if got.Name != "p" || got.Namespace != "ns" || got.Labels["app"] != "web" || got.Status.PodIP != "10.0.0.1" {
		t.Errorf("transform changed more than managedFields: %+v", got)
	}

	var nodeTransform func(any) (any, error)
	for obj, by := range o.ByObject {
		if _, ok := obj.(*corev1.Node); ok {
			nodeTransform = by.Transform
		}
	}
	if nodeTransform == nil {
		t.Fatal("no transform for Nodes")
	}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n", ManagedFields: mf, Labels: map[string]string{"big": "x"}},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: "v1.33.0", OSImage: "linux"}}}
	out, err = nodeTransform(node)
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*corev1.Node)
	if n.Status.NodeInfo.KubeletVersion != "v1.33.0" || len(n.ManagedFields) != 0 || len(n.Labels) != 0 || n.Status.NodeInfo.OSImage != "" {
		t.Errorf("node kept more or less than its kubelet version: %+v", n)
	}
}

// TestServeRefusesClientVerificationWithoutTLS: --tls-verify-client
// without --authz-tls would leave ext_authz on plaintext gRPC, answering any
// client; serve refuses it before connecting anywhere.
func TestServeRefusesClientVerificationWithoutTLS(t *testing.T) {
	for _, args := range [][]string{{"--tls-verify-client"}, {"--tls-verify-client", "--authz-tls", "--authz=false"}} {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"serve", "--kubeconfig", filepath.Join(t.TempDir(), "absent")}, args...))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		err := cmd.Execute()
		if err == nil || !strings.Contains(err.Error(), "--tls-verify-client applies to ext_authz over TLS") {
			t.Errorf("serve %v: err = %v, want the flag combination refused", args, err)
		}
	}
}

// TestServeRefusesInvalidFlagValues: a flag value serve cannot honour is
// refused at start, naming the flag, before connecting anywhere, instead of
// being replaced by a default (--webhook-port=0 served on 9443, a negative
// size, interval or sample rate became the default, --audit-qps=0 audited
// at 20/s), ignored (--authz-tls or --authz-http-addr without ext_authz) or meaning something
// the help does not say (a negative --shutdown-timeout waited for the
// servers without bound: controller-runtime's GracefulShutdownTimeout < 0).
func TestServeRefusesInvalidFlagValues(t *testing.T) {
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--webhooks=false", "--istio-config-namespace=istio-system"}, "--istio-config-namespace needs the webhooks"},
		{[]string{"--webhook-port=0"}, "--webhook-port"},
		{[]string{"--webhook-port=-1"}, "--webhook-port"},
		{[]string{"--webhook-port=65536"}, "--webhook-port"},
		{[]string{"--shutdown-timeout=-1s"}, "--shutdown-timeout"},
		{[]string{"--shutdown-delay=-1s"}, "--shutdown-delay"},
		{[]string{"--audit-interval=-1m"}, "--audit-interval"},
		{[]string{"--audit-qps=0"}, "--audit-qps"},
		{[]string{"--audit-qps=-5"}, "--audit-qps"},
		{[]string{"--decision-log=loud"}, "--decision-log"},
		{[]string{"--decision-log-sample=-1"}, "--decision-log-sample"},
		{[]string{"--authz-max-recv-msg-size=-1"}, "--authz-max-recv-msg-size"},
		{[]string{"--authz-max-connections=-1"}, "--authz-max-connections"},
		{[]string{"--authz-max-request-memory=-1"}, "--authz-max-request-memory"},
		{[]string{"--authz-max-request-memory=1048576"}, "--authz-max-request-memory"}, // below one 4 MiB message
		{[]string{"--authz-http-max-header-bytes=-1"}, "--authz-http-max-header-bytes"},
		{[]string{"--webhook-max-connections=-1"}, "--webhook-max-connections"},
		{[]string{"--authz-keepalive-time=-1s"}, "--authz-keepalive-time"},
		{[]string{"--authz-keepalive-timeout=-1s"}, "--authz-keepalive-timeout"},
		{[]string{"--authz-reload-debounce=-1s"}, "--authz-reload-debounce"},
		{[]string{"--authz-rebuild-priority=idle"}, "--authz-rebuild-priority"},
		{[]string{"--leader-election-id=Mesh_Leader"}, "--leader-election-id"},
		{[]string{"--leader-election-id="}, "--leader-election-id"},
		{[]string{"--inject-max-request-bytes=-1"}, "--inject-max-request-bytes"},
		{[]string{"--inject-reload-debounce=-1s"}, "--inject-reload-debounce"},
		{[]string{"--authz-tls", "--authz=false"}, "--authz-tls"},
		{[]string{"--authz-http-addr=:9001", "--authz=false"}, "--authz-http-addr"},
	} {
		cmd := newRootCmd()
		cmd.SetArgs(append([]string{"serve", "--kubeconfig", filepath.Join(t.TempDir(), "absent")}, tc.args...))
		cmd.SetOut(new(strings.Builder))
		cmd.SetErr(new(strings.Builder))
		err := cmd.Execute()
		if err == nil || !strings.HasPrefix(err.Error(), tc.flag) {
			t.Errorf("serve %v: err = %v, want it refused naming %s", tc.args, err, tc.flag)
		}
	}
}
