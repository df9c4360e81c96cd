package webhook

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	networking "istio.io/api/networking/v1alpha3"
	clientnetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshguard/meshguard/validation/crossref"
)

const gatewayVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews.example.com]
  gateways: [ingress]
  http:
  - route: [{destination: {host: reviews}}]
`

// The Gateway kind is not served at start and attaches late: until its
// handler has synced, a VirtualService naming a Gateway the index has not
// seen is not denied in a strict namespace (the Gateway may have been applied
// with its CRD), and no IST0101/IST0132 about it is reported; once synced, a
// Gateway that is still missing is denied again. Findings that depend only on
// complete kinds (Services here) are kept meanwhile.
func TestIndexLateGatewayKindNoDenialUntilSynced(t *testing.T) {
	ix := crossref.NewIndex("")
	ix.SetNamespace("prod", map[string]string{crossref.StrictLabel: "true"}, true)
	ix.SetService("prod", "reviews", true)
	reg := &lateRegistration{polled: make(chan struct{})}
	getInformer := func(context.Context, client.Object) (handlerAdder, error) { return lateInformer{reg}, nil }
	gw := indexWatch{obj: &clientnetworkingv1.Gateway{}, set: func(o client.Object, present bool) {
		if g, ok := o.(*clientnetworkingv1.Gateway); ok && present {
			ix.SetGateway(crossref.Key{Namespace: o.GetNamespace(), Name: o.GetName()}, &g.Spec)
		}
	}}
	late := watchLate(ix, []indexWatch{gw}, getInformer, time.Millisecond, logr.Discard())
	ix.SetReady() // as readyWhenSynced, with the kinds served at start
	h := &ValidationHandler{Log: logr.Discard(), Index: ix}
	req := admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "prod", gatewayVS, false)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { late(ctx); close(done) }()
	select {
	case <-reg.polled: // attached, its handler not synced yet
	case <-time.After(10 * time.Second):
		t.Fatal("the Gateway watch was not attached")
	}
	if resp := h.Handle(context.Background(), req); !resp.Allowed || strings.Contains(strings.Join(resp.Warnings, "\n"), "ingress") {
		t.Fatalf("Gateway kind not synced: want allowed without a finding about the Gateway, got allowed=%v %+v warnings=%q", resp.Allowed, resp.Result, resp.Warnings)
	}
	// A finding on a complete kind is still a denial meanwhile.
	missingHost := strings.Replace(gatewayVS, "host: reviews}", "host: ratings}", 1)
	if resp := h.Handle(context.Background(), admissionReq(t, admissionv1.Create, "networking.istio.io", "VirtualService", "prod", missingHost, false)); resp.Allowed || !strings.Contains(resp.Result.Message, `host "ratings"`) {
		t.Fatalf("missing Service: want denial, got allowed=%v %+v", resp.Allowed, resp.Result)
	}

	reg.synced.Store(true)
	select {
	case <-done: // returns once the kind is complete
	case <-time.After(10 * time.Second):
		t.Fatal("the Gateway kind never counted as complete")
	}
	resp := h.Handle(context.Background(), req)
	if resp.Allowed || !strings.Contains(resp.Result.Message, "gateway prod/ingress not found") {
		t.Fatalf("Gateway kind synced: want denial naming the missing Gateway, got allowed=%v %+v", resp.Allowed, resp.Result)
	}
	ix.SetGateway(crossref.Key{Namespace: "prod", Name: "ingress"}, &networking.Gateway{Servers: []*networking.Server{{Hosts: []string{"*.example.com"}, Port: &networking.Port{Number: 80, Name: "http", Protocol: "HTTP"}}}})
	if resp := h.Handle(context.Background(), req); !resp.Allowed {
		t.Fatalf("Gateway present: want allowed, got %+v", resp.Result)
	}
}
