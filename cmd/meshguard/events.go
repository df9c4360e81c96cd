package main

import (
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"

	"github.com/meshguard/meshguard/audit"
)

// eventSink records Kubernetes Events about meshguard itself (a rejected
// config or policy update) on meshguard's own Pod, named by the downward API
// variables POD_NAME and POD_UID. Without POD_NAME (local runs) it only logs.
type eventSink struct {
	recorder events.EventRecorder
	pod      *corev1.Pod
}

func newEventSink(recorder events.EventRecorder, namespace string) *eventSink {
	s := &eventSink{recorder: recorder}
	if name := os.Getenv("POD_NAME"); name != "" {
		s.pod = &corev1.Pod{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: types.UID(os.Getenv("POD_UID"))},
		}
	}
	return s
}

// rejected records a Warning Event for an update that was rejected while the
// last good state keeps serving.
func (s *eventSink) rejected(reason string, err error) {
	if s.pod == nil {
		return // the rejection is already logged and counted
	}
	// Cut to the API server's limit: a longer note loses the Event (the
	// whole error is logged). The action carries the note's hash, so a
	// rejection for another error is not folded into the last one's series
	// (audit.EventAction).
	note := audit.EventNote(fmt.Sprintf("%v; the last good state keeps serving", err))
	s.recorder.Eventf(s.pod, nil, corev1.EventTypeWarning, reason, audit.EventAction("Reload", note), "%s", note)
}
