package analysis

import (
	"encoding/json"
	"fmt"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshguard/meshguard/validation/crossref"
)

// AddKubernetesObject adds a Kubernetes object the mesh checks refer to: a
// Namespace (its labels), a Service (a host, and its selector and ports), a
// Pod or a Deployment (a workload: the Deployment's pod template), or a
// MutatingWebhookConfiguration (webhooks.go), or a Secret (its name only:
// gatewaysecret.go). It reports false for any
// other kind. Objects without a namespace are in
// defaultNamespace. An object of these kinds that does not decode is an
// error naming it.
func (in *Input) AddKubernetesObject(obj map[string]any, defaultNamespace string) (bool, error) {
	apiVersion, _ := obj["apiVersion"].(string)
	kind, _ := obj["kind"].(string)
	decode := func(into any) error {
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(obj, into); err != nil {
			// The converter names the Go type ("unrecognized type: string");
			// decoding the same object as JSON names the field.
			if b, jerr := json.Marshal(obj); jerr == nil {
				if jerr = json.Unmarshal(b, into); jerr != nil {
					err = jerr
				}
			}
			md, _ := obj["metadata"].(map[string]any)
			return fmt.Errorf("%s %v: %w", kind, md["name"], err)
		}
		return nil
	}
	ns := func(n string) string {
		if n == "" {
			return defaultNamespace
		}
		return n
	}
	switch {
	case apiVersion == "v1" && kind == "Namespace":
		var n corev1.Namespace
		if err := decode(&n); err != nil {
			return true, err
		}
		if in.Namespaces == nil {
			in.Namespaces = map[string]map[string]string{}
		}
		in.Namespaces[n.Name] = n.Labels
		if in.Namespaces[n.Name] == nil {
			in.Namespaces[n.Name] = map[string]string{}
		}
	case apiVersion == "v1" && kind == "Service":
		var s corev1.Service
		if err := decode(&s); err != nil {
			return true, err
		}
		key := crossref.Key{Namespace: ns(s.Namespace), Name: s.Name}
		in.Services = append(in.Services, key)
		ks := KubeService{Namespace: key.Namespace, Name: key.Name, Selector: s.Spec.Selector, ExportTo: s.Annotations[crossref.ExportToAnnotation],
			Labels: s.Labels, Type: s.Spec.Type}
		for _, p := range s.Spec.Ports {
			ks.Ports = append(ks.Ports, ServicePort{Port: p.Port, TargetPort: p.TargetPort, Protocol: p.Protocol, Name: p.Name, AppProtocol: p.AppProtocol})
		}
		in.KubeServices = append(in.KubeServices, ks)
	case apiVersion == "v1" && kind == "Pod":
		var p corev1.Pod
		if err := decode(&p); err != nil {
			return true, err
		}
		in.Workloads = append(in.Workloads, Workload{Kind: "Pod", Namespace: ns(p.Namespace), Name: p.Name, Labels: p.Labels,
			Annotations: p.Annotations, Containers: containers(p.Spec.Containers), InitContainers: containers(p.Spec.InitContainers),
			HostNetwork: p.Spec.HostNetwork, RunAsUser: runAsUser(p.Spec.SecurityContext)})
	case apiVersion == "apps/v1" && kind == "Deployment":
		var d appsv1.Deployment
		if err := decode(&d); err != nil {
			return true, err
		}
		t := d.Spec.Template
		in.Workloads = append(in.Workloads, Workload{Kind: "Deployment", Namespace: ns(d.Namespace), Name: d.Name, Labels: t.Labels,
			Annotations: t.Annotations, Containers: containers(t.Spec.Containers), InitContainers: containers(t.Spec.InitContainers),
			HostNetwork: t.Spec.HostNetwork, DeploymentLabels: d.Labels, RunAsUser: runAsUser(t.Spec.SecurityContext)})
	case apiVersion == "v1" && kind == "ConfigMap":
		md, _ := obj["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		if !strings.HasPrefix(name, injectorConfigMapPrefix) {
			return false, nil // other ConfigMaps stay unknown
		}
		var cm corev1.ConfigMap
		if err := decode(&cm); err != nil {
			return true, err
		}
		return true, in.addInjectorConfigMap(&cm, ns(cm.Namespace))
	case apiVersion == "admissionregistration.k8s.io/v1" && kind == "MutatingWebhookConfiguration":
		// Cluster scoped (no namespace), for the webhook analyzer
		// (webhooks.go) only: not in in.Kube, whose kinds the annotation
		// analyzer reads.
		var c admissionregistrationv1.MutatingWebhookConfiguration
		if err := decode(&c); err != nil {
			return true, err
		}
		in.MutatingWebhookConfigurations = append(in.MutatingWebhookConfigurations, newMutatingWebhookConfiguration(&c))
		return true, nil
	case apiVersion == "v1" && kind == "Secret":
		// The name only, for the gateway Secret analyzer (gatewaysecret.go):
		// the Secret is not decoded and its data never kept. Not in in.Kube
		// (the annotation analyzer reads other kinds).
		md, _ := obj["metadata"].(map[string]any)
		name, _ := md["name"].(string)
		namespace, _ := md["namespace"].(string)
		if name == "" {
			return true, fmt.Errorf("%s: metadata.name: a non-empty string is required", kind)
		}
		if in.SecretNames == nil {
			in.SecretNames = map[string][]string{}
		}
		in.SecretNames[ns(namespace)] = append(in.SecretNames[ns(namespace)], name)
		return true, nil
	default:
		return false, nil
	}
	in.Kube = append(in.Kube, kubeMetadata(kind, obj, defaultNamespace)) // annotations.go
	return true, nil
}

// AddStoredKubernetesObject is AddKubernetesObject for an object read from a
// cluster: a Deployment is marked Stored (its pods are the cluster's Pods).
func (in *Input) AddStoredKubernetesObject(obj map[string]any, defaultNamespace string) (bool, error) {
	n := len(in.Workloads)
	known, err := in.AddKubernetesObject(obj, defaultNamespace)
	if len(in.Workloads) > n && in.Workloads[n].Kind == "Deployment" {
		in.Workloads[n].Stored = true
	}
	return known, err
}

// containers are the names, images and securityContext.runAsUser of cs.
func containers(cs []corev1.Container) []Container {
	var out []Container
	for _, c := range cs {
		var uid *int64
		if c.SecurityContext != nil {
			uid = c.SecurityContext.RunAsUser
		}
		out = append(out, Container{Name: c.Name, Image: c.Image, RunAsUser: uid})
	}
	return out
}

// runAsUser is a pod's spec.securityContext.runAsUser (nil when unset).
func runAsUser(sc *corev1.PodSecurityContext) *int64 {
	if sc == nil {
		return nil
	}
	return sc.RunAsUser
}
