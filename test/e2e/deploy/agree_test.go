package deploy

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestPackagingsAgree keeps the hand-written kustomize manifests and the chart
// (rendered with its defaults) from drifting apart: the same objects, the same
// webhooks, permissions, pod spec and certificate chain.
func TestPackagingsAgree(t *testing.T) {
	pairs := []struct{ helm, kustomize packaging }{
		{helmPackaging("cert-manager", ""), kustomizePackaging("cert-manager", "cert-manager")},
		{helmPackaging("self", ""), kustomizePackaging("self-managed", "self")},
		// In another namespace too: `helm --namespace` and the documented overlay.
		{otherNamespaceHelm("cert-manager"), otherNamespaceKustomize("cert-manager", "cert-manager")},
		{otherNamespaceHelm("self"), otherNamespaceKustomize("self-managed", "self")},
	}
	for _, pair := range pairs {
		t.Run(pair.kustomize.name, func(t *testing.T) {
			h, k := parse(t, pair.helm.render(t)), parse(t, pair.kustomize.render(t))
			if hk, kk := inventory(h), inventory(k); !slices.Equal(hk, kk) {
				t.Errorf("objects differ:\nhelm      %v\nkustomize %v", hk, kk)
			}
			same := func(what string, a, b any) {
				t.Helper()
				if !equality.Semantic.DeepEqual(a, b) {
					ay, _ := yaml.Marshal(a)
					by, _ := yaml.Marshal(b)
					t.Errorf("%s differs:\n--- helm\n%s--- kustomize\n%s", what, ay, by)
				}
			}
			same("mutating webhooks", h.mutating(t).Webhooks, k.mutating(t).Webhooks)
			same("mutating annotations", h.mutating(t).Annotations, k.mutating(t).Annotations)
			same("validating webhooks", h.validating(t).Webhooks, k.validating(t).Webhooks)
			same("validating annotations", h.validating(t).Annotations, k.validating(t).Annotations)
			same("RBAC grants", grantSet(t, h), grantSet(t, k))
			same("service spec", h.service(t).Spec, k.service(t).Spec)
			same("service annotations", h.service(t).Annotations, k.service(t).Annotations)
			same("PodDisruptionBudget spec", h.pdb(t).Spec, k.pdb(t).Spec)

			hd, kd := h.deployment(t), k.deployment(t)
			hc, kc := hd.Spec.Template.Spec.Containers[0], kd.Spec.Template.Spec.Containers[0]
			same("args", slices.Sorted(slices.Values(hc.Args)), slices.Sorted(slices.Values(kc.Args)))
			same("container ports", hc.Ports, kc.Ports)
			same("container securityContext", hc.SecurityContext, kc.SecurityContext)
			same("probes", []any{hc.ReadinessProbe, hc.LivenessProbe}, []any{kc.ReadinessProbe, kc.LivenessProbe})
			same("resources", hc.Resources, kc.Resources)
			same("env", hc.Env, kc.Env)
			same("volume mounts", hc.VolumeMounts, kc.VolumeMounts)
			same("pod securityContext", hd.Spec.Template.Spec.SecurityContext, kd.Spec.Template.Spec.SecurityContext)
			same("topology spread", hd.Spec.Template.Spec.TopologySpreadConstraints, kd.Spec.Template.Spec.TopologySpreadConstraints)
			same("pod labels", hd.Spec.Template.Labels, kd.Spec.Template.Labels)
			same("strategy", hd.Spec.Strategy, kd.Spec.Strategy)
			same("replicas", hd.Spec.Replicas, kd.Spec.Replicas)
			same("revisionHistoryLimit", hd.Spec.RevisionHistoryLimit, kd.Spec.RevisionHistoryLimit)
			same("image", []string{hc.Image, string(hc.ImagePullPolicy)}, []string{kc.Image, string(kc.ImagePullPolicy)})
			same("serviceAccountName", hd.Spec.Template.Spec.ServiceAccountName, kd.Spec.Template.Spec.ServiceAccountName)
			same("volumes", configMapVolumes(hd.Spec.Template.Spec.Volumes), configMapVolumes(kd.Spec.Template.Spec.Volumes))

			for _, key := range []string{"mesh.yaml", "values.yaml"} {
				var hv, kv any
				if err := yaml.Unmarshal([]byte(h.configMap(t).Data[key]), &hv); err != nil {
					t.Fatalf("helm ConfigMap %s: %v", key, err)
				}
				if err := yaml.Unmarshal([]byte(k.configMap(t).Data[key]), &kv); err != nil {
					t.Fatalf("kustomize ConfigMap %s: %v", key, err)
				}
				same("ConfigMap "+key, hv, kv)
			}
			for _, kind := range []string{"Issuer", "Certificate"} {
				same(kind+" specs", specsByName(h.find(kind)), specsByName(k.find(kind)))
			}
		})
	}
}

// inventory lists kind/namespace/name, with kustomize's ConfigMap hash suffix removed.
func inventory(m manifests) []string {
	var out []string
	for _, u := range m.all {
		name := u.GetName()
		if u.GetKind() == "ConfigMap" {
			if i := strings.LastIndex(name, "-"); i > 0 && strings.HasPrefix(name, "meshguard-config-") {
				name = name[:i]
			}
		}
		out = append(out, fmt.Sprintf("%s/%s/%s", u.GetKind(), u.GetNamespace(), name))
	}
	slices.Sort(out)
	return out
}

// grantSet lists every grant, sorted, so that a difference prints readably.
func grantSet(t *testing.T, m manifests) []string {
	t.Helper()
	set := map[string]bool{}
	for _, cr := range m.clusterRoles(t) {
		for _, g := range grantsOf(t, "cluster", "ClusterRole "+cr.Name, cr.Rules) {
			set[g.String()] = true
		}
	}
	for _, r := range m.roles(t) {
		for _, g := range grantsOf(t, r.Namespace, "Role "+r.Name, r.Rules) {
			set[g.String()] = true
		}
	}
	return slices.Sorted(maps.Keys(set))
}

// configMapVolumes are the volumes with the ConfigMap name left out (kustomize
// adds a hash suffix; both must name the packaging's one ConfigMap, which
// checkArgs ties to the mounted files).
func configMapVolumes(vs []corev1.Volume) []corev1.Volume {
	out := make([]corev1.Volume, len(vs))
	for i, v := range vs {
		out[i] = *v.DeepCopy()
		if out[i].ConfigMap != nil {
			out[i].ConfigMap.Name = ""
		}
	}
	return out
}

func specsByName(objs []*unstructured.Unstructured) map[string]any {
	out := map[string]any{}
	for _, u := range objs {
		out[u.GetName()] = u.Object["spec"]
	}
	return out
}
