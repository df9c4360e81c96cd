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
