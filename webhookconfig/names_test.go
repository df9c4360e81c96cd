package webhookconfig

import (
	"bytes"
	"os"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// TestNamesForRevision: the default revision ("" or "default", as the Helm
// chart's meshguard.revision) keeps the plain names; another appends
// "-<revision>".
func TestNamesForRevision(t *testing.T) {
	for _, tc := range []struct {
		rev                  string
		isDefault            bool
		mutating, validating string
	}{
		{"", true, "meshguard-sidecar-injector", "meshguard-validator"},
		{"default", true, "meshguard-sidecar-injector", "meshguard-validator"},
		{"canary", false, "meshguard-sidecar-injector-canary", "meshguard-validator-canary"},
		{"1-24", false, "meshguard-sidecar-injector-1-24", "meshguard-validator-1-24"},
		{"Default", false, "meshguard-sidecar-injector-Default", "meshguard-validator-Default"},
	} {
		if got := IsDefaultRevision(tc.rev); got != tc.isDefault {
			t.Errorf("IsDefaultRevision(%q) = %v, want %v", tc.rev, got, tc.isDefault)
		}
		if got := MutatingConfigNameFor(tc.rev); got != tc.mutating {
			t.Errorf("MutatingConfigNameFor(%q) = %q, want %q", tc.rev, got, tc.mutating)
		}
		if got := ValidatingConfigNameFor(tc.rev); got != tc.validating {
			t.Errorf("ValidatingConfigNameFor(%q) = %q, want %q", tc.rev, got, tc.validating)
		}
	}
}

// TestKustomizeBaseAgrees: the kustomize base (default revision) names its
// configurations and calls the paths as the code does (test/e2e/deploy
// checks the rendered Helm chart and the Go builders too).
func TestKustomizeBaseAgrees(t *testing.T) {
	b, err := os.ReadFile("../deploy/kustomize/base/webhooks.yaml")
	if err != nil {
		t.Fatal(err)
	}
	docs := bytes.Split(b, []byte("\n---\n"))
	if len(docs) != 2 {
		t.Fatalf("webhooks.yaml has %d documents, want the mutating and the validating configuration", len(docs))
	}
	var m admissionv1.MutatingWebhookConfiguration
	var v admissionv1.ValidatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(docs[0], &m); err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(docs[1], &v); err != nil {
		t.Fatal(err)
	}
	if m.Name != MutatingConfigNameFor("") || v.Name != ValidatingConfigNameFor("") {
		t.Errorf("kustomize base names %q and %q, want %q and %q", m.Name, v.Name, MutatingConfigNameFor(""), ValidatingConfigNameFor(""))
	}
	if len(m.Webhooks) == 0 || len(v.Webhooks) == 0 {
		t.Fatalf("%d mutating and %d validating entries, want at least one of each", len(m.Webhooks), len(v.Webhooks))
	}
	for _, w := range m.Webhooks {
		if got := servicePath(w.ClientConfig); got != InjectPath {
			t.Errorf("mutating entry %s calls %q, want %s", w.Name, got, InjectPath)
		}
	}
	for _, w := range v.Webhooks {
		if got := servicePath(w.ClientConfig); got != ValidatePath {
			t.Errorf("validating entry %s calls %q, want %s", w.Name, got, ValidatePath)
		}
	}
}

func servicePath(c admissionv1.WebhookClientConfig) string {
	if c.Service == nil || c.Service.Path == nil {
		return ""
	}
	return *c.Service.Path
}
