package policy

import (
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"

	secapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	secv1 "istio.io/client-go/pkg/apis/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GenerateSet builds n AuthorizationPolicies spread over namespaces ns-0 …
// ns-(namespaces-1), for benchmarks and load tests (hack/ghz-load.sh). Every
// policy selects app=app-<i%10>; most are ALLOW with principals/paths/methods,
// every 10th is a DENY on /admin*.
func GenerateSet(n, namespaces int) *Set {
	set := &Set{}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("ns-%d", i%namespaces)
		spec := &secapi.AuthorizationPolicy{
			Selector: &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": fmt.Sprintf("app-%d", (i/namespaces)%10)}},
			Rules: []*secapi.Rule{{
				From: []*secapi.Rule_From{{Source: &secapi.Source{
					Principals: []string{fmt.Sprintf("cluster.local/ns/%s/sa/client-%d", ns, i), "cluster.local/ns/ingress/sa/gw"},
				}}},
				To: []*secapi.Rule_To{{Operation: &secapi.Operation{
					Methods: []string{"GET", "POST"}, Paths: []string{fmt.Sprintf("/api/v%d/*", i%3), "/healthz"},
				}}},
				When: []*secapi.Condition{{Key: "request.headers[x-tenant]", Values: []string{fmt.Sprintf("t-%d", i%7), "shared"}}},
			}},
		}
		if i%10 == 9 {
			spec.Action = secapi.AuthorizationPolicy_DENY
			spec.Rules = []*secapi.Rule{{To: []*secapi.Rule_To{{Operation: &secapi.Operation{Paths: []string{"/admin*"}}}}}}
		}
		ap := &secv1.AuthorizationPolicy{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: ns,
			CreationTimestamp: metav1.NewTime(base.Add(time.Duration(i) * time.Second))}}
		proto.Merge(&ap.Spec, spec)
		set.AuthorizationPolicies = append(set.AuthorizationPolicies, ap)
	}
	return set
}
