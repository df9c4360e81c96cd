package injector

import (
	"regexp"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Owner is the workload a pod belongs to, inferred without API calls like
// Istio's GetDeployMetaFromPod.
type Owner struct {
	Name       string
	Namespace  string
	Kind       string
	APIVersion string
}

var cronJobName = regexp.MustCompile(`^(.+)-\d{8,10}$`)

// InferOwner guesses the owning workload from the controller ownerReference and labels.
func InferOwner(pod *corev1.Pod, namespace string) Owner {
	o := Owner{Name: pod.Name, Namespace: namespace, Kind: "Pod", APIVersion: "v1"}
	var ref *metav1.OwnerReference
	for i := range pod.OwnerReferences {
		if r := &pod.OwnerReferences[i]; r.Controller != nil && *r.Controller {
			ref = r
			break
		}
	}
	if ref == nil {
		return o
	}
	o.Name, o.Kind, o.APIVersion = ref.Name, ref.Kind, ref.APIVersion
	switch ref.Kind {
	case "ReplicaSet":
		if h, ok := pod.Labels["pod-template-hash"]; ok && strings.HasSuffix(ref.Name, "-"+h) {
			o.Name, o.Kind, o.APIVersion = strings.TrimSuffix(ref.Name, "-"+h), "Deployment", "apps/v1"
		} else if h, ok := pod.Labels["rollouts-pod-template-hash"]; ok && strings.HasSuffix(ref.Name, "-"+h) {
			o.Name, o.Kind, o.APIVersion = strings.TrimSuffix(ref.Name, "-"+h), "Rollout", "argoproj.io/v1alpha1"
		}
	case "ReplicationController":
		if dc, ok := pod.Labels["deploymentconfig"]; ok {
			o.Name, o.Kind, o.APIVersion = dc, "DeploymentConfig", "apps.openshift.io/v1"
		}
	case "Job":
		if m := cronJobName.FindStringSubmatch(ref.Name); m != nil {
			o.Name, o.Kind, o.APIVersion = m[1], "CronJob", "batch/v1"
		}
	}
	return o
}
