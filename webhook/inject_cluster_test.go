package webhook

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	toolscache "k8s.io/client-go/tools/cache"
)

func node(name, kubelet string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"big": strings.Repeat("x", 100)}},
		Status: corev1.NodeStatus{NodeInfo: corev1.NodeSystemInfo{KubeletVersion: kubelet, OSImage: "linux"}}}
}

// TestNodeTrackerDecide: Istio's ENABLE_NATIVE_SIDECARS=auto (spec §2.7):
// the pod's node if it is scheduled and known, else every node; one older
// kubelet turns native sidecars off cluster-wide; no nodes, no decision.
func TestNodeTrackerDecide(t *testing.T) {
	type want struct {
		decided, native bool
		note            string
	}
	for _, tc := range []struct {
		name     string
		nodes    [][2]string
		nodeName string
		want     want
	}{
		{name: "no nodes", want: want{}},
		{name: "all new", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.34.2-eks-1"}}, want: want{true, true, ""}},
		{name: "one old", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.32.9"}}, want: want{true, false, `1 of 2 nodes run a kubelet older than v1.33 (b: "v1.32.9")`}},
		{name: "unparsable counts as old", nodes: [][2]string{{"a", "v1.33.0"}, {"b", ""}}, want: want{true, false, "1 of 2 nodes"}},
		{name: "scheduled on a new node", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.32.9"}}, nodeName: "a", want: want{true, true, ""}},
		{name: "scheduled on an old node", nodes: [][2]string{{"a", "v1.33.0"}, {"b", "v1.32.9"}}, nodeName: "b", want: want{true, false, `node b runs kubelet "v1.32.9"`}},
		{name: "scheduled on an unknown node: every node", nodes: [][2]string{{"a", "v1.33.0"}}, nodeName: "zz", want: want{true, true, ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := NewNodeTracker()
			for _, n := range tc.nodes {
				tr.Set(n[0], n[1])
			}
			native, note := tr.Decide(tc.nodeName)
			if (native != nil) != tc.want.decided || (native != nil && *native != tc.want.native) || !strings.Contains(note, tc.want.note) || (tc.want.note == "" && note != "") {
				t.Errorf("Decide(%q) = %v, %q; want decided %v native %v note %q", tc.nodeName, native, note, tc.want.decided, tc.want.native, tc.want.note)
			}
		})
	}
}

// TestNodeHandler: informer events keep the tracker current, including an
// upgrade of the last old kubelet and a deletion seen only as a tombstone.
func TestNodeHandler(t *testing.T) {
	tr := NewNodeTracker()
	h := nodeHandler(tr)
	h.OnAdd(node("a", "v1.33.1"), true)
	h.OnAdd(node("b", "v1.31.0"), true)
	if native, _ := tr.Decide(""); native == nil || *native {
		t.Fatalf("with an old node: %v, want false", native)
	}
	h.OnUpdate(node("b", "v1.31.0"), node("b", "v1.33.0"))
	if native, _ := tr.Decide(""); native == nil || !*native {
		t.Fatalf("after the upgrade: %v, want true", native)
	}
	h.OnAdd(node("c", "v1.30.0"), false)
	h.OnDelete(toolscache.DeletedFinalStateUnknown{Key: "c", Obj: node("c", "v1.30.0")})
	if native, _ := tr.Decide(""); native == nil || !*native {
		t.Fatalf("after deleting the old node: %v, want true", native)
	}
	h.OnDelete(node("a", ""))
	h.OnDelete(node("b", ""))
	if native, _ := tr.Decide(""); native != nil {
		t.Fatalf("no nodes left: %v, want undecided", *native)
	}
}

func TestStripNode(t *testing.T) {
	in := node("a", "v1.33.1")
	in.ResourceVersion = "7"
	out, err := StripNode(in)
	if err != nil {
		t.Fatal(err)
	}
	n := out.(*corev1.Node)
	if n.Name != "a" || n.ResourceVersion != "7" || n.Status.NodeInfo.KubeletVersion != "v1.33.1" {
		t.Fatalf("lost what /inject reads: %+v", n)
	}
	if len(n.Labels) != 0 || n.Status.NodeInfo.OSImage != "" {
		t.Fatalf("kept what /inject does not read: %+v", n)
	}
	if other, _ := StripNode("not a node"); other != "not a node" {
		t.Fatal("non-node objects must pass through")
	}
}
