package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
)

// TestRejectedEventNoteBounded: the API server refuses an Event whose note
// exceeds 1,024 bytes (k8s pkg/apis/core/validation NoteLengthLimit), so a
// long rejection (a Rego module with many compile errors) was lost instead
// of recorded; the note is cut to fit, as the audit's are.
func TestRejectedEventNoteBounded(t *testing.T) {
	t.Setenv("POD_NAME", "meshguard-0")
	rec := events.NewFakeRecorder(1)
	sink := newEventSink(rec, "meshguard-system")
	sink.rejected("PolicyRejected", errors.New(strings.Repeat("é", 3000)))
	got := <-rec.Events
	note := strings.TrimPrefix(got, "Warning PolicyRejected ")
	if len(note) > 1024 {
		t.Errorf("Event note is %d bytes, want at most 1024", len(note))
	}
	if !strings.HasPrefix(note, "éé") {
		t.Errorf("Event note %.40q does not begin with the error", note)
	}
}

// TestRejectedEventChangedNote: client-go's events broadcaster keys a series
// by type, reason, action, reporting controller and instance, regarding and
// related object, not by the note (tools/events getKey): a second rejection
// with another error became a series count on the first Event, whose note
// still named the first error. Each distinct note now has its own Event; the
// same note repeated is still a series.
func TestRejectedEventChangedNote(t *testing.T) {
	t.Setenv("POD_NAME", "meshguard-0")
	const ns = "meshguard-system"
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
	sink := newEventSink(b.NewRecorder(scheme.Scheme, "meshguard"), ns)

	next := func() (watch.EventType, *eventsv1.Event) {
		t.Helper()
		select {
		case e := <-w.ResultChan():
			return e.Type, e.Object.(*eventsv1.Event)
		case <-time.After(30 * time.Second):
			t.Fatal("no Event written in 30s")
		}
		return "", nil
	}
	sink.rejected("PolicyRejected", errors.New("policy a: bad rule"))
	if typ, e := next(); typ != watch.Added || !strings.HasPrefix(e.Note, "policy a: bad rule") {
		t.Fatalf("first rejection: %s %q", typ, e.Note)
	}
	sink.rejected("PolicyRejected", errors.New("policy b: another bad rule"))
	switch typ, e := next(); {
	case typ == watch.Modified:
		t.Fatalf("second rejection became the series (count %d) of the Event noting %q", e.Series.Count, e.Note)
	case typ != watch.Added || !strings.HasPrefix(e.Note, "policy b: another bad rule"):
		t.Fatalf("second rejection: %s %q", typ, e.Note)
	}
	sink.rejected("PolicyRejected", errors.New("policy b: another bad rule"))
	if typ, e := next(); typ != watch.Modified || e.Series == nil || e.Series.Count != 2 || !strings.HasPrefix(e.Note, "policy b: another bad rule") {
		t.Fatalf("repeated rejection: %s %q series %+v; want the second Event's series", typ, e.Note, e.Series)
	}
}
