package kubeinject

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// deploymentConfig is OpenShift's DeploymentConfig (openshift/api apps/v1
// types.go), field for field with the same JSON names and omitempty, so a
// DeploymentConfig is read and written as istioctl kube-inject reads and
// writes it: Istio registers that type in its injectScheme
// (pkg/kube/inject), decodes into it with sigs.k8s.io/yaml Unmarshal
// (FromRawToObject) and writes it with sigs.k8s.io/yaml Marshal
// (IntoResourceFile). Decoding it like every other kind
// (manifest.DecodeStrict) converts a number where the type has a string
// ("1e+06" for 1e6) and refuses an unknown field; writing it keeps the
// spec's test/replicas and the status block, which have no omitempty.
type deploymentConfig struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              dcSpec   `json:"spec"`
	Status            dcStatus `json:"status,omitempty"`
}

type dcSpec struct {
	Strategy             dcStrategy              `json:"strategy"`
	MinReadySeconds      int32                   `json:"minReadySeconds,omitempty"`
	Triggers             []dcTrigger             `json:"triggers"`
	Replicas             int32                   `json:"replicas"`
	RevisionHistoryLimit *int32                  `json:"revisionHistoryLimit,omitempty"`
	Test                 bool                    `json:"test"`
	Paused               bool                    `json:"paused,omitempty"`
	Selector             map[string]string       `json:"selector,omitempty"`
	Template             *corev1.PodTemplateSpec `json:"template,omitempty"`
}

type dcStrategy struct {
	Type                  string                      `json:"type,omitempty"`
	CustomParams          *dcCustomParams             `json:"customParams,omitempty"`
	RecreateParams        *dcRecreateParams           `json:"recreateParams,omitempty"`
	RollingParams         *dcRollingParams            `json:"rollingParams,omitempty"`
	Resources             corev1.ResourceRequirements `json:"resources,omitempty"`
	Labels                map[string]string           `json:"labels,omitempty"`
	Annotations           map[string]string           `json:"annotations,omitempty"`
	ActiveDeadlineSeconds *int64                      `json:"activeDeadlineSeconds,omitempty"`
}

type dcCustomParams struct {
	Image       string          `json:"image,omitempty"`
	Environment []corev1.EnvVar `json:"environment,omitempty"`
	Command     []string        `json:"command,omitempty"`
}

type dcRecreateParams struct {
	TimeoutSeconds *int64           `json:"timeoutSeconds,omitempty"`
	Pre            *dcLifecycleHook `json:"pre,omitempty"`
	Mid            *dcLifecycleHook `json:"mid,omitempty"`
	Post           *dcLifecycleHook `json:"post,omitempty"`
}

type dcRollingParams struct {
	UpdatePeriodSeconds *int64              `json:"updatePeriodSeconds,omitempty"`
	IntervalSeconds     *int64              `json:"intervalSeconds,omitempty"`
	TimeoutSeconds      *int64              `json:"timeoutSeconds,omitempty"`
	MaxUnavailable      *intstr.IntOrString `json:"maxUnavailable,omitempty"`
	MaxSurge            *intstr.IntOrString `json:"maxSurge,omitempty"`
	Pre                 *dcLifecycleHook    `json:"pre,omitempty"`
	Post                *dcLifecycleHook    `json:"post,omitempty"`
}

type dcLifecycleHook struct {
	FailurePolicy string        `json:"failurePolicy"`
	ExecNewPod    *dcExecNewPod `json:"execNewPod,omitempty"`
	TagImages     []dcTagImage  `json:"tagImages,omitempty"`
}

type dcExecNewPod struct {
	Command       []string        `json:"command"`
	Env           []corev1.EnvVar `json:"env,omitempty"`
	ContainerName string          `json:"containerName"`
	Volumes       []string        `json:"volumes,omitempty"`
}

type dcTagImage struct {
	ContainerName string                 `json:"containerName"`
	To            corev1.ObjectReference `json:"to"`
}

type dcTrigger struct {
	Type              string               `json:"type,omitempty"`
	ImageChangeParams *dcImageChangeParams `json:"imageChangeParams,omitempty"`
}

type dcImageChangeParams struct {
	Automatic          bool                   `json:"automatic,omitempty"`
	ContainerNames     []string               `json:"containerNames,omitempty"`
	From               corev1.ObjectReference `json:"from"`
	LastTriggeredImage string                 `json:"lastTriggeredImage,omitempty"`
}

type dcStatus struct {
	LatestVersion       int64         `json:"latestVersion"`
	ObservedGeneration  int64         `json:"observedGeneration"`
	Replicas            int32         `json:"replicas"`
	UpdatedReplicas     int32         `json:"updatedReplicas"`
	AvailableReplicas   int32         `json:"availableReplicas"`
	UnavailableReplicas int32         `json:"unavailableReplicas"`
	Details             *dcDetails    `json:"details,omitempty"`
	Conditions          []dcCondition `json:"conditions,omitempty"`
	ReadyReplicas       int32         `json:"readyReplicas,omitempty"`
}

type dcDetails struct {
	Message string    `json:"message,omitempty"`
	Causes  []dcCause `json:"causes"`
}

type dcCause struct {
	Type         string               `json:"type"`
	ImageTrigger *dcCauseImageTrigger `json:"imageTrigger,omitempty"`
}

type dcCauseImageTrigger struct {
	From corev1.ObjectReference `json:"from"`
}

type dcCondition struct {
	Type               string                 `json:"type"`
	Status             corev1.ConditionStatus `json:"status"`
	LastUpdateTime     metav1.Time            `json:"lastUpdateTime,omitempty"`
	LastTransitionTime metav1.Time            `json:"lastTransitionTime,omitempty"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
}
