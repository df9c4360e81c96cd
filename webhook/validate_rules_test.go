package webhook

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	networking "istio.io/api/networking/v1alpha3"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/validation/crossref"
)

// The shipped example rules at admission: a deny rule denies with the line
// `meshguard validate --rego` prints, a warn rule becomes an admission
// warning, a rule over input.referenced sees the DestinationRule the cache
// holds, and an index that has not synced fails the request (fail closed).
func TestValidationHandlerOrgRules(t *testing.T) {
	examples, err := orgrules.Load(t.Context(), "../deploy/examples/rego")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.rego"), []byte(`package meshguard.validation
deny contains msg if {
	input.kind == "VirtualService"
	some r in input.referenced
	r.kind == "DestinationRule"
	not r.spec.trafficPolicy.tls
	msg := sprintf("routes through DestinationRule %s/%s without TLS", [r.metadata.namespace, r.metadata.name])
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	referencing, err := orgrules.Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ready := crossref.NewIndex("")
	ready.SetNamespace("shop", map[string]string{"environment": "production"}, true)
	for _, ns := range []string{"default", "istio-system", "bookinfo"} {
		ready.SetNamespace(ns, nil, true)
	}
	ready.SetService("bookinfo", "reviews", true)
	ready.SetDestinationRule(crossref.Key{Namespace: "bookinfo", Name: "reviews"}, &networking.DestinationRule{Host: "reviews"})
	ready.SetReady()
	const wildcardVS = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: ['*']\n  gateways: [istio-system/ingress]\n  http:\n  - route: [{destination: {host: reviews}}]\n"
	const badWildcardVS = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: ['*']\n  gateways: [istio-system/ingress]\n  http:\n  - route: [{destination: {host: reviews}, weight: -15}]\n"
	const permissivePA = "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: reviews}\nspec:\n  mtls: {mode: PERMISSIVE}\n"
	for _, tc := range []struct {
		name        string
		rules       *orgrules.Rules
		ix          *crossref.Index
		kind, ns    string
		doc         string
		allowed     bool
		code        int32
		wantMsg     string
		wantWarning string
	}{
		{"deny rule denies", examples, ready, "VirtualService", "default", wildcardVS, false, http.StatusForbidden,
			`VirtualService default/reviews: organisation rule: VirtualService default/reviews: host "*" is only allowed in istio-system`, ""},
		{"deny rule silent in istio-system", examples, ready, "VirtualService", "istio-system", wildcardVS, true, http.StatusOK, "", ""},
		{"warn rule warns with namespace labels", examples, ready, "PeerAuthentication", "shop", permissivePA, true, http.StatusOK, "",
			"PeerAuthentication shop/reviews: organisation rule: PeerAuthentication shop/reviews: PERMISSIVE mTLS in a production namespace"},
		{"warn rule silent outside production", examples, ready, "PeerAuthentication", "bookinfo", permissivePA, true, http.StatusOK, "", ""},
		{"rule sees referenced DestinationRule", referencing, ready, "VirtualService", "bookinfo", goodVS, false, http.StatusForbidden,
			"VirtualService bookinfo/reviews: organisation rule: routes through DestinationRule bookinfo/reviews without TLS", ""},
		// A schema or Istio-rule error is denied as Istio denies (no status code,
		// which the API server returns as 400), whether or not a rule denies too.
		{"invalid, no rules: Istio's denial", nil, ready, "VirtualService", "default", badWildcardVS, false, 0, "weight -15 < 0", ""},
		{"invalid and a deny rule: Istio's denial", examples, ready, "VirtualService", "default", badWildcardVS, false, 0, "weight -15 < 0", ""},
		{"unsynced index fails closed", examples, crossref.NewIndex(""), "VirtualService", "istio-system", wildcardVS, false, http.StatusServiceUnavailable,
			"organisation rules are not ready", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &ValidationHandler{Rules: func() *orgrules.Rules { return tc.rules }, RuleIndex: tc.ix, Log: logr.Discard()}
			group := "networking.istio.io"
			if tc.kind == "PeerAuthentication" {
				group = "security.istio.io"
			}
			resp := h.Handle(context.Background(), admissionReq(t, admissionv1.Create, group, tc.kind, tc.ns, tc.doc, false))
			if resp.Allowed != tc.allowed || resp.Result.Code != tc.code {
				t.Fatalf("allowed=%v code=%d, want %v %d: %+v", resp.Allowed, resp.Result.Code, tc.allowed, tc.code, resp.Result)
			}
			if tc.wantMsg != "" && !strings.Contains(resp.Result.Message, tc.wantMsg) {
				t.Errorf("message %q lacks %q", resp.Result.Message, tc.wantMsg)
			}
			if tc.wantWarning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tc.wantWarning) {
				t.Errorf("warnings %q lack %q", resp.Warnings, tc.wantWarning)
			}
			if tc.allowed && tc.wantWarning == "" && len(resp.Warnings) > 0 {
				t.Errorf("unexpected warnings %q", resp.Warnings)
			}
		})
	}
}

// Until the configured rules have loaded once (a ConfigMap source not yet
// synced, or a first module that does not compile), a request that still
// reaches the replica fails (503, so failurePolicy Fail rejects it), as for
// an unsynced index: admitting it would skip the rules' denials.
func TestValidationHandlerRulesNotLoadedFailClosed(t *testing.T) {
	r, err := newOrgRules(OrgRulesOptions{ConfigMap: "org-rules", Namespace: "meshguard-system"}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ix := crossref.NewIndex("")
	ix.SetReady()
	h := &ValidationHandler{Log: logr.Discard()}
	h.useOrgRules(r, ix)
	resp := h.Handle(context.Background(), admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", goodVS, false))
	if resp.Allowed || resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Result.Message, "organisation rules") {
		t.Errorf("allowed=%v code=%d %q: want 503 until the rules load", resp.Allowed, resp.Result.Code, resp.Result.Message)
	}
}

// A *.rego key a ConfigMap holds in binaryData (kubectl puts a file that is
// not UTF-8 there) is a module too: the reload fails naming it rather than
// loading the other modules without it.
func TestOrgRulesConfigMapBinaryModuleRefused(t *testing.T) {
	r, err := newOrgRules(OrgRulesOptions{ConfigMap: "org-rules", Namespace: "meshguard-system"}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	r.cms = toolscache.NewStore(toolscache.MetaNamespaceKeyFunc)
	if err := r.cms.Add(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard-system", Name: "org-rules"},
		Data:       map[string]string{"a.rego": "package meshguard.validation\nwarn contains \"a\" if true\n"},
		BinaryData: map[string][]byte{"b.rego": []byte("package meshguard.validation\ndeny contains \"caf\xe9\" if true\n")}}); err != nil {
		t.Fatal(err)
	}
	if err := r.reload(t.Context()); err == nil || !strings.Contains(err.Error(), "ConfigMap meshguard-system/org-rules b.rego") {
		t.Errorf("reload: %v, want an error naming the binaryData module", err)
	}
	if r.Ready(nil) == nil {
		t.Error("rules ready without the binaryData module")
	}
}

// A reload that fails keeps the last good rules; a later good one replaces them.
func TestOrgRulesReloadKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "r.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package meshguard.validation\ndeny contains \"one\" if input.kind == \"A\"\n")
	r, err := newOrgRules(OrgRulesOptions{Dir: dir}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if r.Ready(nil) == nil {
		t.Error("ready before the first load")
	}
	if err := r.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	first := r.Current()
	if r.Ready(nil) != nil || first == nil {
		t.Fatalf("not ready after a good load")
	}
	write("package meshguard.validation\ndeny contains msg if {") // does not parse
	if err := r.reload(t.Context()); err == nil || !strings.Contains(err.Error(), "r.rego") {
		t.Errorf("bad module: got %v, want an error naming r.rego", err)
	}
	if r.Current() != first {
		t.Error("a failed reload replaced the rules")
	}
	write("package meshguard.validation\ndeny contains \"two\" if input.kind == \"A\"\n")
	if err := r.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	v, err := r.Current().Evaluate(t.Context(), orgrules.Input{Kind: "A"})
	if err != nil || len(v.Deny) != 1 || v.Deny[0] != "two" {
		t.Errorf("after a good reload: %+v, %v", v, err)
	}
}

// loadedDirRules loads organisation rules from a directory holding one module
// (deny "one" for kind A); write replaces it, reloads receives every reload's
// outcome (OnReload).
func loadedDirRules(t *testing.T) (r *OrgRules, write func(src string), reloads chan error) {
	t.Helper()
	dir := t.TempDir()
	write = func(src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, "r.rego"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("package meshguard.validation\ndeny contains \"one\" if input.kind == \"A\"\n")
	reloads = make(chan error, 10)
	r, err := newOrgRules(OrgRulesOptions{Dir: dir, OnReload: func(err error) { reloads <- err }}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	return r, write, reloads
}

// runOrgRules keeps r reloaded (its watch and debounce) until the test ends.
func runOrgRules(t *testing.T, r *OrgRules) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { r.run(ctx, nil); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A rules directory is watched: an edited module is in force after the
// debounce, a broken edit is reported through OnReload and keeps the rules.
func TestOrgRulesDirectoryHotReload(t *testing.T) {
	r, write, reloads := loadedDirRules(t)
	runOrgRules(t, r)
	deny := func() []string {
		v, err := r.Current().Evaluate(t.Context(), orgrules.Input{Kind: "A"})
		if err != nil {
			t.Fatal(err)
		}
		return v.Deny
	}
	// The watch starts asynchronously: rewrite until a reload with the
	// wanted outcome is seen (a reload of an earlier burst may come first).
	awaitReload := func(src string, wantErr bool) {
		t.Helper()
		deadline := time.After(time.Minute)
		for {
			write(src)
			select {
			case err := <-reloads:
				if (err != nil) == wantErr {
					return
				}
			case <-time.After(time.Second):
			case <-deadline:
				t.Fatalf("no reload of %q with error=%v", src, wantErr)
			}
		}
	}
	awaitReload("package meshguard.validation\ndeny contains \"two\" if input.kind == \"A\"\n", false)
	if !slices.Equal(deny(), []string{"two"}) {
		t.Fatalf("after an edit: %v", deny())
	}
	awaitReload("package meshguard.validation\ndeny contains", true)
	if !slices.Equal(deny(), []string{"two"}) {
		t.Errorf("a broken edit replaced the rules: %v", deny())
	}
}

// Until the organisation rules have loaded once, /validate fails the request
// (503) instead of admitting it without them; once loaded, the rules judge.
func TestValidationWaitsForOrgRules(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.rego"), []byte("package meshguard.validation\ndeny contains \"no VirtualServices\" if input.kind == \"VirtualService\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := newOrgRules(OrgRulesOptions{Dir: dir}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	ix := crossref.NewIndex("")
	ix.SetNamespace("default", nil, true)
	ix.SetReady()
	h := &ValidationHandler{Rules: r.Current, RuleIndex: ix, RulesReady: func() error { return r.Ready(nil) }, Log: logr.Discard()}
	const vs = "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews}\nspec:\n  hosts: [reviews]\n  http:\n  - route: [{destination: {host: reviews}}]\n"
	req := admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "default", vs, false)
	if resp := h.Handle(t.Context(), req); resp.Allowed || resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Result.Message, "not loaded yet") {
		t.Fatalf("before the rules loaded: allowed=%v %+v, want 503 'not loaded yet'", resp.Allowed, resp.Result)
	}
	if err := r.reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp := h.Handle(t.Context(), req); resp.Allowed || resp.Result.Code != http.StatusForbidden || !strings.Contains(resp.Result.Message, "no VirtualServices") {
		t.Fatalf("after the rules loaded: allowed=%v %+v, want the rule's denial", resp.Allowed, resp.Result)
	}
}

// A namespace the index has not seen yet (created a moment before the object:
// the watch lags the API server, which has admitted the namespace) has labels
// the handler cannot know. Judged with none, a rule on namespaceLabels let
// the object through, and a strict-references namespace only warned: the
// request fails instead (503), as for an index that has not synced.
// Gatekeeper reads such a namespace from the API server (pkg/webhook/policy.go
// createReviewForRequest); it never judges with no labels.
func TestValidationHandlerUnknownNamespaceFailsClosed(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.rego"), []byte(`package meshguard.validation
deny contains "no VirtualServices in production" if {
	input.kind == "VirtualService"
	input.namespaceLabels.environment == "production"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := orgrules.Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer func(d time.Duration) { namespaceLag = d }(namespaceLag)
	namespaceLag = 50 * time.Millisecond
	ix := crossref.NewIndex("")
	ix.SetReady()
	ix.SetService("shop", "reviews", true)
	req := admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "shop", goodVS, false)
	for name, h := range map[string]*ValidationHandler{
		"organisation rules": {Rules: func() *orgrules.Rules { return rules }, RuleIndex: ix, Log: logr.Discard()},
		"cross-references":   {Index: ix, Log: logr.Discard()}, // subsets v1, v2 of reviews are not defined
	} {
		t.Run(name, func(t *testing.T) {
			resp := h.Handle(t.Context(), req)
			if resp.Allowed || resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Result.Message, "namespace shop") {
				t.Fatalf("namespace not indexed yet: allowed=%v %+v, want 503 naming the namespace", resp.Allowed, resp.Result)
			}
		})
	}
	// The usual case: the namespace was created just before the object and
	// reaches the index while the request waits for it (namespaceLag).
	// The namespace is indexed once the request is seen waiting for it (a
	// fixed delay would not show that the request waited at all).
	namespaceLag = time.Minute
	handled := make(chan struct{})
	go func() {
		if awaitGoroutineIn(handled, "crossref.(*Index).WaitNamespace(") {
			ix.SetNamespace("shop", map[string]string{"environment": "production", crossref.StrictLabel: "true"}, true)
		}
	}()
	h := &ValidationHandler{Rules: func() *orgrules.Rules { return rules }, RuleIndex: ix, Index: ix, Log: logr.Discard()}
	resp := h.Handle(t.Context(), req)
	close(handled)
	if resp.Allowed || resp.Result.Code != http.StatusForbidden || !strings.Contains(resp.Result.Message, "no VirtualServices in production") {
		t.Fatalf("namespace indexed while waiting: allowed=%v %+v, want the rule's denial", resp.Allowed, resp.Result)
	}
}

// awaitGoroutineIn reports, once some goroutine's stack holds frame (a
// function's qualified name), true; false if stop closes first.
func awaitGoroutineIn(stop <-chan struct{}, frame string) bool {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n == len(buf) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if bytes.Contains(buf[:n], []byte(frame)) {
			return true
		}
		select {
		case <-stop:
			return false
		case <-time.After(time.Millisecond):
		}
	}
}

// Rules see the request's operation and, on UPDATE, the old object
// (Gatekeeper's input.review.operation and input.review.oldObject): a rule
// can keep a field immutable, or deny a violation only when it is created so
// that an update of an object that already had it passes. An UPDATE without
// oldObject fails closed rather than passing the immutability rule.
func TestValidationHandlerOrgRulesSeeOperationAndOldObject(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "r.rego"), []byte(immutableHostsRules), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := orgrules.Load(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ix := crossref.NewIndex("")
	ix.SetNamespace("default", nil, true)
	ix.SetReady()
	vs := func(hosts, label string) string {
		return "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: reviews, labels: {v: '" + label + "'}}\nspec:\n  hosts: " + hosts + "\n  http:\n  - route: [{destination: {host: reviews}}]\n"
	}
	for _, tc := range []struct {
		name     string
		op       admissionv1.Operation
		doc, old string
		code     int32
		wantMsg  string
	}{
		{"create", admissionv1.Create, vs("[reviews]", "1"), "", http.StatusOK, ""},
		{"update keeping hosts", admissionv1.Update, vs("[reviews]", "2"), vs("[reviews]", "1"), http.StatusOK, ""},
		{"update changing hosts", admissionv1.Update, vs("[reviews, ratings]", "1"), vs("[reviews]", "1"), http.StatusForbidden,
			"VirtualService default/reviews: organisation rule: spec.hosts is immutable: was [\"reviews\"]"},
		{"create with legacy host", admissionv1.Create, vs("[legacy.example.com]", "1"), "", http.StatusForbidden,
			"organisation rule: new VirtualServices may not route legacy.example.com"},
		{"label update of a legacy object", admissionv1.Update, vs("[legacy.example.com]", "2"), vs("[legacy.example.com]", "1"), http.StatusOK, ""},
		{"update without oldObject", admissionv1.Update, vs("[reviews]", "1"), "", http.StatusServiceUnavailable, "UPDATE request has no oldObject"},
		{"undecodable oldObject", admissionv1.Update, vs("[reviews]", "1"), "[1", http.StatusServiceUnavailable, "decoding the old object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := &ValidationHandler{Rules: func() *orgrules.Rules { return rules }, RuleIndex: ix, Log: logr.Discard()}
			req := admissionReq(t, tc.op, "networking.istio.io", "VirtualService", "default", tc.doc, false)
			if tc.old != "" {
				old, err := yaml.YAMLToJSON([]byte(tc.old))
				if err != nil {
					old = []byte(tc.old)
				}
				req.OldObject.Raw = old
			}
			resp := h.Handle(t.Context(), req)
			if resp.Result.Code != tc.code || resp.Allowed != (tc.code == http.StatusOK) {
				t.Fatalf("allowed=%v code=%d, want %d: %+v", resp.Allowed, resp.Result.Code, tc.code, resp.Result)
			}
			if !strings.Contains(resp.Result.Message, tc.wantMsg) {
				t.Errorf("message %q lacks %q", resp.Result.Message, tc.wantMsg)
			}
		})
	}
}

// immutableHostsRules keep a VirtualService's spec.hosts immutable and deny
// a legacy host only on CREATE (docs/governance.md).
const immutableHostsRules = `package meshguard.validation

deny contains msg if {
	input.kind == "VirtualService"
	input.oldObject.spec.hosts != input.object.spec.hosts
	msg := sprintf("spec.hosts is immutable: was %v", [input.oldObject.spec.hosts])
}

deny contains msg if {
	input.operation == "CREATE"
	some h in input.object.spec.hosts
	h == "legacy.example.com"
	msg := "new VirtualServices may not route legacy.example.com"
}
`

// A rules directory changed after the first load but before the watch
// started (SetupOrgRules loads it before the manager runs the watch) is
// reloaded once the watch is set up, as the injector's files are
// (reload.Run): the edit went unseen until the next one.
func TestOrgRulesDirectoryChangedBeforeWatch(t *testing.T) {
	r, write, reloads := loadedDirRules(t)
	write("package meshguard.validation\ndeny contains \"two\" if input.kind == \"A\"\n")
	runOrgRules(t, r)
	select {
	case err := <-reloads:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the rules changed before the watch started were not reloaded")
	}
	v, err := r.Current().Evaluate(t.Context(), orgrules.Input{Kind: "A"})
	if err != nil || !slices.Equal(v.Deny, []string{"two"}) {
		t.Errorf("after the watch started: %v, %v; want [two]", v.Deny, err)
	}
}

// The rule ConfigMaps come from meshguard's own namespace: an empty one
// (which would watch every namespace's ConfigMaps) is refused. In the
// namespace, only events that change the selected ConfigMaps' modules
// trigger a reload (each recompiles every module): not another ConfigMap's
// (seen when a name and a selector are both given), nor an update of labels
// or annotations alone.
func TestOrgRulesConfigMapEventsTriggerReload(t *testing.T) {
	for _, o := range []OrgRulesOptions{{ConfigMap: "org-rules"}, {ConfigMapSelector: "meshguard.io/rules=true"}} {
		if _, err := newOrgRules(o, logr.Discard()); err == nil || !strings.Contains(err.Error(), "--namespace is empty") {
			t.Errorf("%+v: got %v, want an error naming the empty namespace", o, err)
		}
	}
	r, err := newOrgRules(OrgRulesOptions{ConfigMap: "org-rules", ConfigMapSelector: "meshguard.io/rules=true", Namespace: "meshguard-system"}, logr.Discard())
	if err != nil {
		t.Fatal(err)
	}
	cm := func(name string, lbls map[string]string, data string, annotations map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "meshguard-system", Name: name, Labels: lbls, Annotations: annotations},
			Data: map[string]string{"r.rego": data}}
	}
	rules := map[string]string{"meshguard.io/rules": "true"}
	h := r.configMapEvents()
	reloads := 0
	for _, tc := range []struct {
		name   string
		event  func()
		reload bool
	}{
		{"named ConfigMap added", func() { h.OnAdd(cm("org-rules", nil, "a", nil), false) }, true},
		{"selected ConfigMap added", func() { h.OnAdd(cm("team", rules, "a", nil), false) }, true},
		{"other ConfigMap added", func() { h.OnAdd(cm("other", nil, "a", nil), false) }, false},
		{"other ConfigMap updated", func() { h.OnUpdate(cm("other", nil, "a", nil), cm("other", nil, "b", nil)) }, false},
		{"other ConfigMap deleted", func() { h.OnDelete(cm("other", nil, "a", nil)) }, false},
		{"annotation of a selected one", func() { h.OnUpdate(cm("team", rules, "a", nil), cm("team", rules, "a", map[string]string{"x": "y"})) }, false},
		{"data of a selected one", func() { h.OnUpdate(cm("team", rules, "a", nil), cm("team", rules, "b", nil)) }, true},
		{"binaryData of the named one", func() {
			n := cm("org-rules", nil, "a", nil)
			n.BinaryData = map[string][]byte{"b.rego": []byte("b")}
			h.OnUpdate(cm("org-rules", nil, "a", nil), n)
		}, true},
		{"label selects one", func() { h.OnUpdate(cm("other", nil, "a", nil), cm("other", rules, "a", nil)) }, true},
		{"label unselects one", func() { h.OnUpdate(cm("other", rules, "a", nil), cm("other", nil, "a", nil)) }, true},
		{"selected one deleted, final state unknown", func() {
			h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "meshguard-system/team", Obj: cm("team", rules, "a", nil)})
		}, true},
	} {
		tc.event()
		select {
		case <-r.trigger:
			reloads++
			if !tc.reload {
				t.Errorf("%s: triggered a reload", tc.name)
			}
		default:
			if tc.reload {
				t.Errorf("%s: no reload", tc.name)
			}
		}
	}
	if reloads != 7 {
		t.Errorf("%d reloads, want 7", reloads)
	}
}
