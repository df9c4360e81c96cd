package main

import (
	"errors"
	"strings"
	"testing"

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
