package audit

import (
	"context"
	"sort"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"

	"github.com/meshguard/meshguard/analysis"
)

// TestEmitEventsOnePerViolation: two violations of one object are two
// Events, each with its note. client-go's events broadcaster keys a series
// without the note (tools/events getKey), so the second one was a series
// count on the first Event, its text never written (EventAction).
func TestEmitEventsOnePerViolation(t *testing.T) {
	const ns = "shop"
	client := fake.NewClientset()
	w, err := client.EventsV1().Events(ns).Watch(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := events.NewBroadcaster(&events.EventSinkImpl{Interface: client.EventsV1()})
	b.StartRecordingToSink(ctx.Done())
	defer b.Shutdown()
	a := &Auditor{Recorder: b.NewRecorder(scheme.Scheme, "meshguard-audit")}
	ref := ObjectRef{APIVersion: "networking.istio.io/v1", Kind: "VirtualService", Namespace: ns, Name: "reviews", UID: "1"}
	v1 := Violation{Object: ref, Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Error, Field: "spec.hosts[0]", Message: "m1"}
	v2 := Violation{Object: ref, Code: "IST0101", Rule: "ReferencedResourceNotFound", Level: analysis.Error, Field: "spec.hosts[1]", Message: "m2"}
	// One at a time: the broadcaster writes each Event from a goroutine of
	// its own, so the second is recorded once the first is in its cache.
	vs := []Violation{v1, v2}
	var notes []string
	for i, v := range vs {
		a.emitEvents(vs[:i+1]) // the second run: v1 reported before, v2 new
		select {
		case e := <-w.ResultChan():
			ev := e.Object.(*eventsv1.Event)
			if e.Type != watch.Added {
				t.Fatalf("%s: %s of the Event noting %q (series %+v), want a new Event", v.Text(), e.Type, ev.Note, ev.Series)
			}
			notes = append(notes, ev.Note)
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no Event written in 30s", v.Text())
		}
	}
	sort.Strings(notes)
	if want := []string{v1.Text(), v2.Text()}; notes[0] != want[0] || notes[1] != want[1] {
		t.Errorf("notes %q, want %q", notes, want)
	}
}
