package policy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/json"
)

// TestInRevision: Istio's LabelsInRevision (pkg/config/model.go) for an
// istiod whose REVISION is the chart's ("default" when no revision is set).
func TestInRevision(t *testing.T) {
	for _, c := range []struct {
		name   string
		labels map[string]string
		rev    string
		want   bool
	}{
		{"no labels, default revision", nil, "", true},
		{"no label, canary", map[string]string{"app": "x"}, "canary", true},
		{"labelled default, rev empty (= default)", map[string]string{RevisionLabel: "default"}, "", true},
		{"labelled default, rev default", map[string]string{RevisionLabel: "default"}, "default", true},
		{"labelled canary, default revision", map[string]string{RevisionLabel: "canary"}, "", false},
		{"labelled canary, rev default", map[string]string{RevisionLabel: "canary"}, "default", false},
		{"labelled canary, rev canary", map[string]string{RevisionLabel: "canary"}, "canary", true},
		{"labelled default, rev canary", map[string]string{RevisionLabel: "default"}, "canary", false},
		// Present but empty: Istio compares it as written; "" is no revision's name.
		{"labelled empty, default revision", map[string]string{RevisionLabel: ""}, "", false},
		{"labelled empty, canary", map[string]string{RevisionLabel: ""}, "canary", false},
		// Compared as written: a tag or a differently cased name is not resolved.
		{"labelled Canary, rev canary", map[string]string{RevisionLabel: "Canary"}, "canary", false},
		// A revision tag (prod -> canary) is not canary's: istiod's crdclient filters with
		// LabelsInRevision, not LabelsInRevisionOrTags (docs/compatibility.md, istio/istio#51582).
		{"labelled with tag prod of canary, rev canary", map[string]string{RevisionLabel: "prod"}, "canary", false},
	} {
		if got := InRevision(c.labels, c.rev); got != c.want {
			t.Errorf("%s: InRevision(%v, %q) = %v, want %v", c.name, c.labels, c.rev, got, c.want)
		}
	}
}

const (
	revAllowSleep = `{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"allow-sleep","namespace":"foo","creationTimestamp":"2026-01-01T00:00:00Z"%s},
	  "spec":{"selector":{"matchLabels":{"app":"web"}},"action":"ALLOW","rules":[{"from":[{"source":{"principals":["cluster.local/ns/foo/sa/sleep"]}}]}]}}`
	revCanaryAllowBar = `{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"canary-allow-bar","namespace":"foo","labels":{"istio.io/rev":"canary","team":"x"},"creationTimestamp":"2026-01-01T00:00:00Z"},
	  "spec":{"selector":{"matchLabels":{"app":"web"}},"action":"ALLOW","rules":[{"from":[{"source":{"principals":["cluster.local/ns/bar/sa/api"]}}]}]}}`
	// Rejected by validation (an unknown field), labelled for canary.
	revCanaryInvalid = `{"apiVersion":"security.istio.io/v1","kind":"AuthorizationPolicy","metadata":{"name":"canary-future","namespace":"foo","labels":{"istio.io/rev":"canary"},"creationTimestamp":"2026-01-01T00:00:00Z"},
	  "spec":{"selector":{"matchLabels":{"app":"web"}},"action":"ALLOW","rules":[{"from":[{"source":{"futureField":["x"]}}]}]}}`
	revCanaryStrict = `{"apiVersion":"security.istio.io/v1","kind":"PeerAuthentication","metadata":{"name":"canary-strict","namespace":"foo","labels":{"istio.io/rev":"canary"},"creationTimestamp":"2026-01-01T00:00:00Z"},
	  "spec":{"mtls":{"mode":"STRICT"}}}`
)

// revVerdicts is the verdict for bar -> web (only the canary ALLOW admits it).
func revVerdicts(t *testing.T, set *Set) Verdict {
	t.Helper()
	s, err := Compile(context.Background(), Mesh{}, set, 1)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.CheckRequest(context.Background(), http(from(pBar)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAddStoredRevision: the API server path (DecodeStored + AddStoredIn)
// reads a policy labelled istio.io/rev only for that revision, as istiod's
// config client does (crdclient Client.inRevision); a skipped object is
// reported and, when invalid, not counted as invalid.
func TestAddStoredRevision(t *testing.T) {
	decode := func(doc string) *Stored {
		t.Helper()
		var m map[string]any
		if err := json.Unmarshal([]byte(doc), &m); err != nil {
			t.Fatal(err)
		}
		kind := m["kind"].(string)
		st, err := DecodeStored(kind, m)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	for _, c := range []struct {
		rev         string
		wantBar     bool
		wantSkipped []string
	}{
		{"", false, []string{"AuthorizationPolicy foo/canary-allow-bar", "AuthorizationPolicy foo/canary-future", "PeerAuthentication foo/canary-strict"}},
		{"default", false, []string{"AuthorizationPolicy foo/canary-allow-bar", "AuthorizationPolicy foo/canary-future", "PeerAuthentication foo/canary-strict"}},
		{"canary", true, nil},
	} {
		t.Run("rev="+c.rev, func(t *testing.T) {
			objs := []*Stored{decode(fmt.Sprintf(revAllowSleep, "")), decode(revCanaryAllowBar), decode(revCanaryStrict)}
			if c.rev != "canary" {
				objs = append(objs, decode(revCanaryInvalid)) // for canary it would fail closed, as it should
			}
			set := &Set{}
			skipped := set.AddStoredIn(c.rev, objs...)
			var got []string
			for _, s := range skipped {
				got = append(got, s.Kind+" "+s.Namespace+"/"+s.Name)
				if s.Label != "canary" || !strings.Contains(s.String(), "istio.io/rev=canary") {
					t.Errorf("skipped %+v (%s): want the label value canary named", s, s)
				}
			}
			sort.Strings(got)
			if strings.Join(got, ",") != strings.Join(c.wantSkipped, ",") {
				t.Errorf("skipped %v, want %v", got, c.wantSkipped)
			}
			bar := revVerdicts(t, set)
			if bar.Allowed != c.wantBar {
				t.Errorf("bar -> web under revision %q: %+v, want allowed=%v", c.rev, bar, c.wantBar)
			}
			if !c.wantBar && bar.Rule == FailClosedRule {
				t.Errorf("denied by a fail-closed rule (%s): the invalid canary object counted under revision %q", bar.Reason, c.rev)
			}
		})
	}
	// AddStored is the default revision (a review's case).
	set := &Set{}
	set.AddStored(decode(fmt.Sprintf(revAllowSleep, "")), decode(revCanaryAllowBar))
	if bar := revVerdicts(t, set); bar.Allowed {
		t.Errorf("AddStored: bar -> web allowed by a policy labelled istio.io/rev=canary: %+v", bar)
	}
}

// TestDirLoaderRevision: a policy directory is read as the API server path
// reads the cluster: a policy labelled for another revision is not enforced,
// and is reported through OnSkip; it is still validated (a directory's
// document meshguard validate rejects fails the load whatever its label).
func TestDirLoaderRevision(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("sleep.yaml", fmt.Sprintf(revAllowSleep, ""))
	write("canary.yaml", revCanaryAllowBar+"\n---\n"+revCanaryStrict)
	for _, c := range []struct {
		rev     string
		wantBar bool
		skipped int
	}{{"", false, 2}, {"default", false, 2}, {"canary", true, 0}} {
		l := &DirLoader{Revision: c.rev}
		var skipped []OutOfRevision
		l.OnSkip = func(o OutOfRevision) { skipped = append(skipped, o) }
		for i := range 2 { // the second load reuses the memo: the same outcome
			skipped = nil
			set, _, err := l.Load(dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(skipped) != c.skipped {
				t.Errorf("rev %q load %d: skipped %v, want %d", c.rev, i, skipped, c.skipped)
			}
			if bar := revVerdicts(t, set); bar.Allowed != c.wantBar {
				t.Errorf("rev %q load %d: bar -> web %+v, want allowed=%v", c.rev, i, bar, c.wantBar)
			}
		}
	}
	// LoadDir is the default revision.
	set, _, err := LoadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if bar := revVerdicts(t, set); bar.Allowed {
		t.Errorf("LoadDir: bar -> web allowed by a policy labelled istio.io/rev=canary: %+v", bar)
	}
	// Validated whatever the label.
	write("future.yaml", revCanaryInvalid)
	if _, _, err := LoadDir(dir); err == nil || !strings.Contains(err.Error(), "futureField") {
		t.Errorf("a canary document validation rejects: %v, want an error naming the field", err)
	}
}
