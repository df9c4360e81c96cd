// Package crossref checks references between mesh objects, at admission time
// and in `meshguard analyze` (package analysis), as Istio's analyzers IST0101,
// IST0109, IST0112, IST0132, IST0145 and IST0174 do: a VirtualService naming a
// missing Gateway, a host not exported to it, a port or subset its host lacks,
// mesh VirtualServices claiming the same scoped host, DestinationRules for
// unknown hosts and Gateways that conflict on selector, port, bind and host.
//
// The checks read an in-memory Index that the webhook keeps up to date from a
// controller-runtime cache. They are warnings by default, because GitOps
// applies objects in any order; a namespace labelled
// meshguard.io/strict-references=true turns them into denials.
package crossref

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// StrictLabel on a namespace makes cross-reference findings denials there.
const StrictLabel = "meshguard.io/strict-references"

// Key names a namespaced object.
type Key struct{ Namespace, Name string }

func (k Key) String() string { return k.Namespace + "/" + k.Name }

// Finding is one cross-reference problem with the field path it concerns.
type Finding struct {
	Field   string
	Message string
	// Code is the Istio analyzer message code for this finding (IST0101
	// ReferencedResourceNotFound, ...), as in Istio's
	// pkg/config/analysis/msg/messages.yaml; `meshguard analyze` reports it.
	Code string
	// Args are the arguments Istio's analyzer passes to the template of
	// Code (as validation.Problem.Args), from which `meshguard analyze`
	// prints istioctl's text; nil where Message is that text already.
	// Message is the webhook's, more specific, wording.
	Args []string
}

// Istio analyzer codes the checks report.
const (
	CodeReferencedResourceNotFound                = "IST0101"
	CodeConflictingMeshGatewayVirtualServiceHosts = "IST0109"
	CodeVirtualServiceDestinationPortSelector     = "IST0112"
	CodeVirtualServiceHostNotFoundInGateway       = "IST0132"
	CodeConflictingGateways                       = "IST0145"
	CodeUnknownDestinationRuleHost                = "IST0174"
)

// Index holds the mesh objects the checks need. All methods are safe for
// concurrent use; specs stored are never modified.
type Index struct {
	domain string

	mu               sync.RWMutex
	ready            bool
	services         map[string]Service // FQDN name.ns.svc.<domain>
	namespaces       map[string]map[string]string
	nsAdded          chan struct{} // closed and replaced when a namespace is recorded (WaitNamespace)
	serviceEntries   map[Key]*networking.ServiceEntry
	gateways         map[Key]*networking.Gateway
	virtualServices  map[Key]*networking.VirtualService
	destinationRules map[Key]*networking.DestinationRule
	// incomplete are the kinds the index may not hold every object of
	// (SetKindComplete); nil when none.
	incomplete map[string]bool

	// view is derived from the maps above on first use after a change (view.go).
	view   atomic.Pointer[view]
	viewMu sync.Mutex
}

// NewIndex returns an empty index; domain is the cluster DNS suffix ("cluster.local" when empty).
func NewIndex(domain string) *Index {
	if domain == "" {
		domain = "cluster.local"
	}
	return &Index{
		domain:           domain,
		services:         map[string]Service{},
		namespaces:       map[string]map[string]string{},
		nsAdded:          make(chan struct{}),
		serviceEntries:   map[Key]*networking.ServiceEntry{},
		gateways:         map[Key]*networking.Gateway{},
		virtualServices:  map[Key]*networking.VirtualService{},
		destinationRules: map[Key]*networking.DestinationRule{},
	}
}

// ExportToAnnotation limits the namespaces that see a Kubernetes Service
// (comma-separated namespaces, "." for the Service's own, "*" for all).
const ExportToAnnotation = "networking.istio.io/exportTo"

// Service is what the checks know of a Kubernetes Service: its name, its
// ports and its networking.istio.io/exportTo annotation.
type Service struct {
	Key
	// Ports are the Service's port numbers, read only when PortsKnown: a
	// caller that knows the Service only by name leaves PortsKnown false, and
	// destination ports (IST0101 host:port, IST0112) are then not checked.
	Ports      []uint32
	PortsKnown bool
	// ExportTo is the networking.istio.io/exportTo annotation as written
	// (comma-separated; empty: every namespace).
	ExportTo string
}

// SetService records (present=true) or forgets a Kubernetes Service known
// by name only (see Service.PortsKnown).
func (ix *Index) SetService(ns, name string, present bool) {
	ix.SetKubeService(Service{Key: Key{ns, name}}, present)
}

// SetKubeService records (present=true) or forgets a Kubernetes Service
// with its ports and exportTo annotation. An update that changes none of
// these (a status, label or resourceVersion change: most Service updates)
// keeps the derived view, which is rebuilt from every object otherwise.
func (ix *Index) SetKubeService(s Service, present bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	fqdn := s.Name + "." + s.Namespace + ".svc." + ix.domain
	old, had := ix.services[fqdn]
	if present {
		if had && old.PortsKnown == s.PortsKnown && old.ExportTo == s.ExportTo && slices.Equal(old.Ports, s.Ports) {
			return
		}
		s.Ports = slices.Clone(s.Ports)
		ix.services[fqdn] = s
	} else {
		if !had {
			return
		}
		delete(ix.services, fqdn)
	}
	ix.view.Store(nil)
}

// SetNamespace records a namespace's labels; nil labels with present=false forgets it.
func (ix *Index) SetNamespace(name string, labels map[string]string, present bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if present {
		if _, known := ix.namespaces[name]; !known {
			close(ix.nsAdded)
			ix.nsAdded = make(chan struct{})
		}
		ix.namespaces[name] = maps.Clone(labels)
	} else {
		delete(ix.namespaces, name)
	}
}

// setOrDelete records v under k, or forgets k when v is nil. An update with
// an equal spec (a status write, a label change) keeps the derived view.
func setOrDelete[T proto.Message](ix *Index, m map[Key]T, k Key, v T) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	old, had := m[k]
	if !v.ProtoReflect().IsValid() { // a nil spec
		if !had {
			return
		}
		delete(m, k)
	} else {
		if had && proto.Equal(old, v) {
			return
		}
		m[k] = v
	}
	ix.view.Store(nil)
}

// SetServiceEntry records a ServiceEntry spec; nil forgets it.
func (ix *Index) SetServiceEntry(k Key, se *networking.ServiceEntry) {
	setOrDelete(ix, ix.serviceEntries, k, se)
}

// SetGateway records a Gateway spec; nil forgets it.
func (ix *Index) SetGateway(k Key, gw *networking.Gateway) { setOrDelete(ix, ix.gateways, k, gw) }

// SetVirtualService records a VirtualService spec; nil forgets it.
func (ix *Index) SetVirtualService(k Key, vs *networking.VirtualService) {
	setOrDelete(ix, ix.virtualServices, k, vs)
}

// SetDestinationRule records a DestinationRule spec; nil forgets it.
func (ix *Index) SetDestinationRule(k Key, dr *networking.DestinationRule) {
	setOrDelete(ix, ix.destinationRules, k, dr)
}

// SetReady marks the index complete (the cache has synced). Until then Check
// reports nothing, so a half-filled index cannot warn about, or in strict
// namespaces deny, references that exist.
func (ix *Index) SetReady() {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	ix.ready = true
}

// SetKindComplete records whether the index holds every object of kind, as
// Findings name kinds ("Gateway", "ServiceEntry", "VirtualService",
// "DestinationRule", "Service"). A kind the webhook could not watch at start
// (its CRD not served yet) is incomplete until its watch has synced: objects
// of it applied with the CRD may exist that the index has not seen, so Check
// drops the findings that depend on it (Finding.dependsOn) rather than warn
// about, or in a strict namespace deny, a reference to an object that exists.
// Every kind is complete unless set otherwise.
func (ix *Index) SetKindComplete(kind string, complete bool) {
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if complete {
		delete(ix.incomplete, kind)
		return
	}
	if ix.incomplete == nil {
		ix.incomplete = map[string]bool{}
	}
	ix.incomplete[kind] = true
}

// Ready reports whether SetReady was called.
func (ix *Index) Ready() bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.ready
}

// WaitNamespace reports whether namespace ns is recorded (SetNamespace),
// waiting up to max (or until ctx ends) for it to be. At admission the
// namespace exists, so an unknown one means the index's watch lags the API
// server (a namespace created a moment before the object; usually
// milliseconds) and its labels (StrictLabel, the ones organisation rules
// read) are not known yet.
func (ix *Index) WaitNamespace(ctx context.Context, ns string, max time.Duration) bool {
	timer := time.NewTimer(max)
	defer timer.Stop()
	for {
		ix.mu.RLock()
		_, ok := ix.namespaces[ns]
		added := ix.nsAdded
		ix.mu.RUnlock()
		if ok {
			return true
		}
		select {
		case <-added:
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// Strict reports whether findings in namespace ns are denials.
func (ix *Index) Strict(ns string) bool {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.namespaces[ns][StrictLabel] == "true"
}

// Check returns the cross-reference findings for the object being admitted.
// Kinds without cross-reference checks return nil.
func (ix *Index) Check(kind string, k Key, spec proto.Message) []Finding {
	fs, _ := ix.CheckLimit(kind, k, spec, -1)
	return fs
}

// CheckLimit is Check building at most limit findings (all of them when
// limit < 0); more counts the findings past them by code, found but not built. A
// VirtualService may repeat one gateway reference or destination tens of
// thousands of times, each a finding (Istio's analyzers report one per
// reference): the webhook, which reports at most
// validation.MaxErrorsPerObject of them, built every message first (an 84 KB
// object made 40,000 findings and 107 MB; a 3 MiB one some GB).
func (ix *Index) CheckLimit(kind string, k Key, spec proto.Message, limit int) (fs []Finding, more map[string]int) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if !ix.ready {
		return nil, nil
	}
	c := &collector{limit: limit}
	if len(ix.incomplete) > 0 {
		c.drop = func(f Finding) bool {
			return slices.ContainsFunc(f.dependsOn(), func(kind string) bool { return ix.incomplete[kind] })
		}
	}
	switch s := spec.(type) {
	case *networking.VirtualService:
		ix.checkVirtualService(c, k, s)
	case *networking.DestinationRule:
		ix.checkDestinationRule(c, k, s)
	case *networking.Gateway:
		ix.checkGateway(c, k, s)
	}
	if workHook != nil {
		workHook(c.w.n)
	}
	return c.out, c.more
}

// work counts the inner-loop steps of one CheckLimit or References call:
// index lookups and the index entries they visit. Tests read it (workHook)
// to show the work grows linearly with the objects checked, as a machine's
// speed cannot (speed is for the benchmarks). One int per call: admissions
// running at once share no counter.
type work struct{ n int }

// workHook, nil in production, receives the work of each CheckLimit and
// References call. Only tests set it, while no check runs (countWork).
var workHook func(n int)

// Omitted is how many findings CheckLimit counted in more, of every code.
func Omitted(more map[string]int) int {
	n := 0
	for _, c := range more {
		n += c
	}
	return n
}

// collector gathers findings, building at most limit (none: limit < 0) and
// counting the others, by code, in more without building them.
type collector struct {
	out   []Finding
	limit int
	more  map[string]int
	// drop: a finding that depends on a kind the index may not hold every
	// object of (SetKindComplete); nil when every kind is complete. Such a
	// finding is built to be judged (only while a late CRD's watch syncs).
	drop func(Finding) bool
	w    work
}

// add appends the finding of code that build returns, or only counts it
// when the limit is reached.
func (c *collector) add(code string, build func() Finding) {
	if c.drop != nil {
		f := build()
		switch {
		case c.drop(f):
		case c.full():
			c.count(code)
		default:
			c.out = append(c.out, f)
		}
		return
	}
	if c.full() {
		c.count(code)
		return
	}
	c.out = append(c.out, build())
}

func (c *collector) full() bool { return c.limit >= 0 && len(c.out) >= c.limit }

func (c *collector) count(code string) {
	if c.more == nil {
		c.more = map[string]int{}
	}
	c.more[code]++
}

// dependsOn names the kinds whose objects decide a finding: with one of them
// not all in the index (SetKindComplete), it may be false.
func (f Finding) dependsOn() []string {
	switch f.Code {
	case CodeVirtualServiceHostNotFoundInGateway, CodeConflictingGateways:
		return []string{"Gateway"}
	case CodeConflictingMeshGatewayVirtualServiceHosts:
		return []string{"VirtualService"}
	case CodeReferencedResourceNotFound:
		if len(f.Args) > 0 && f.Args[0] == "gateway" {
			return []string{"Gateway"}
		}
		if len(f.Args) > 0 && strings.HasSuffix(f.Args[0], "+subset in destinationrule") {
			return []string{"DestinationRule"}
		}
	}
	// A destination or DestinationRule host and its ports (IST0101 host,
	// mirror host and host:port, IST0112, IST0174).
	return []string{"Service", "ServiceEntry"}
}

// fqdn expands a short name (no dot, no leading "*") in namespace ns, as
// Istio's util.ConvertHostToFQDN does.
func (ix *Index) fqdn(host, ns string) string {
	if strings.Contains(host, ".") || strings.HasPrefix(host, "*") {
		return host
	}
	return host + "." + ns + ".svc." + ix.domain
}

// hostKnown: a Service FQDN or a ServiceEntry host (possibly wildcard) matches.
func (ix *Index) hostKnown(fqdn string, w *work) bool {
	if _, ok := ix.services[fqdn]; ok {
		return true
	}
	found := false
	ix.current().seHosts.covering(fqdn, w, func(Key) { found = true })
	return found
}

// hostNotFound words IST0101 for a destination host no visible Service or
// ServiceEntry defines, saying so when one exists but is not exported to
// namespace ns.
func (ix *Index) hostNotFound(ns, host string, w *work) string {
	if ix.hostKnown(ix.fqdn(host, ns), w) {
		return fmt.Sprintf("host %q matches no Service or ServiceEntry exported to namespace %s", host, ns)
	}
	return fmt.Sprintf("host %q matches no Service or ServiceEntry", host)
}

// gatewayKey is the Gateway a VirtualService in namespace vsNS names, as
// Istio's analyzers read it (resource.NewShortOrFullName): "ns/name", else a
// name in vsNS. The legacy "name.namespace" form is such a name, dots
// included: validation warns about it, and analyze reports it missing.
func (ix *Index) gatewayKey(ref, vsNS string) Key {
	if ns, name, ok := strings.Cut(ref, "/"); ok {
		return Key{ns, name}
	}
	return Key{vsNS, ref}
}

// InternalGatewayRef reports whether ref names a Gateway Istio generates for
// a Kubernetes Gateway API listener ("NAME~istio-autogenerated-k8s-gateway~LISTENER",
// optionally "ns/"-prefixed; the marker in the name, not the namespace), as
// Istio's pkg/config/gateway/kube/gatewayapi.go IsInternalGatewayReference
// (istio/istio 461f85ba4afe; the names Istio generates are
// InternalGatewayName's, "~"-separated: the older "-"-separated form, a name
// a user's Gateway may have, is a Gateway reference like any other). Istio's
// virtualservice/gateways.go GatewayAnalyzer reports such a reference as
// IST0165 ReferencedInternalGateway (analysis only: package analysis), never
// as a missing Gateway (IST0101) or one without the VirtualService's hosts
// (IST0132). Such a name is no DNS-1123 label: single-object validation
// refuses it in a VirtualService, as Istio's validateGatewayNames does
// without the internal.istio.io/route-semantics=gateway annotation.
func InternalGatewayRef(ref string) bool {
	if _, name, ok := strings.Cut(ref, "/"); ok {
		ref = name
	}
	return strings.Contains(ref, "~istio-autogenerated-k8s-gateway~")
}

func meshBound(gws []string) bool { return len(gws) == 0 || slices.Contains(gws, "mesh") }

func (ix *Index) checkVirtualService(c *collector, k Key, vs *networking.VirtualService) {
	var hostList string // IST0132's list of the VS hosts, formatted once
	// Whether a Gateway exposes a host, once per Gateway: a reference
	// repeated thousands of times rescanned every host for each.
	exposedBy := map[Key]bool{}
	var vsHosts *hostSet[struct{}] // the VS hosts, for IST0132, built once
	for i, g := range vs.GetGateways() {
		c.w.n++
		if g == "mesh" || InternalGatewayRef(g) {
			continue
		}
		gk := ix.gatewayKey(g, k.Namespace)
		gp := func() string { return field.NewPath("spec", "gateways").Index(i).String() }
		gw, ok := ix.gateways[gk]
		if !ok {
			// Istio names the gateway as written (virtualservice/gateways.go).
			c.add(CodeReferencedResourceNotFound, func() Finding {
				return Finding{Field: gp(), Message: fmt.Sprintf("gateway %s not found", gk),
					Code: CodeReferencedResourceNotFound, Args: []string{"gateway", g}}
			})
		}
		// IST0132, as Istio's virtualservice/gateways.go vsHostInGateway: once
		// per gateway reference when none of the VS hosts matches (either way
		// round, wildcards included) a host of the Gateway, a missing one
		// included.
		exposed, known := exposedBy[gk]
		if !known {
			if ok {
				if vsHosts == nil {
					vsHosts = newHostSet(vs.GetHosts())
				}
				exposed = vsHosts.matchesAny(gatewayHosts(gw, gk.Namespace, k.Namespace), &c.w)
			}
			exposedBy[gk] = exposed
		}
		if !exposed {
			c.add(CodeVirtualServiceHostNotFoundInGateway, func() Finding {
				if hostList == "" {
					hostList = messageHosts(vs.GetHosts())
				}
				return Finding{Field: gp(), Message: fmt.Sprintf("one or more host %s defined in VirtualService %s not found in Gateway %s.",
					hostList, k, gk), Code: CodeVirtualServiceHostNotFoundInGateway}
			})
		}
	}
	for _, f := range ix.checkMeshHosts(k, vs, &c.w) { // at most one
		c.add(f.Code, func() Finding { return f })
	}
	// Destination hosts, wildcard ones included, and their ports as Istio's
	// virtualservice/destinationhosts.go checks them (hosts.go); Istio's
	// messages say "mirror host" and "mirror+subset" for a mirror. The
	// destination's field path is built only for a finding built (destPath).
	check := func(p destPath, d *networking.Destination, mirror bool) {
		if d == nil || d.GetHost() == "" {
			return
		}
		if e := ix.destinationHost(k.Namespace, vs.GetExportTo(), d.GetHost(), &c.w); e != nil {
			portFinding(c, p, d, e)
		} else {
			c.add(CodeReferencedResourceNotFound, func() Finding {
				reftype := "host"
				if mirror {
					reftype = "mirror host"
				}
				return Finding{Field: p.path().Child("host").String(), Message: ix.hostNotFound(k.Namespace, d.GetHost(), &c.w),
					Code: CodeReferencedResourceNotFound, Args: []string{reftype, d.GetHost()}}
			})
		}
		if d.GetSubset() != "" {
			ix.checkSubset(c, p, k.Namespace, d.GetHost(), d.GetSubset(), mirror)
		}
	}
	for i, r := range vs.GetHttp() {
		for j, d := range r.GetRoute() {
			check(destPath{"http", i, "route", j}, d.GetDestination(), false)
		}
		check(destPath{"http", i, "mirror", -1}, r.GetMirror(), true)
		for j, m := range r.GetMirrors() {
			check(destPath{"http", i, "mirrors", j}, m.GetDestination(), true)
		}
	}
	for i, r := range vs.GetTcp() {
		for j, d := range r.GetRoute() {
			check(destPath{"tcp", i, "route", j}, d.GetDestination(), false)
		}
	}
	for i, r := range vs.GetTls() {
		for j, d := range r.GetRoute() {
			check(destPath{"tls", i, "route", j}, d.GetDestination(), false)
		}
	}
}

// destPath locates a destination of a VirtualService: spec.<section>[i].<sub>[j].destination,
// or spec.<section>[i].<sub> when j < 0 (an HTTP route's mirror).
type destPath struct {
	section string
	i       int
	sub     string
	j       int
}

func (d destPath) path() *field.Path {
	p := field.NewPath("spec").Child(d.section).Index(d.i).Child(d.sub)
	if d.j < 0 {
		return p
	}
	return p.Index(d.j).Child("destination")
}

// maxMessageNames bounds the hosts or objects one message lists (IST0132's
// VirtualService hosts, the DestinationRules of a subset message, the
// Gateways of IST0145). Istio lists them all, once per gateway reference,
// destination or server: a VirtualService or Gateway of a few MiB, with
// thousands of objects named in each message, made messages of hundreds of
// MiB to gigabytes in total.
const maxMessageNames = 20

// messageList joins names (the first of total) with sep, at most
// maxMessageNames of them, then says how many more there are.
func messageList(names []string, total int, sep string) string {
	names = names[:min(len(names), maxMessageNames)]
	if total <= len(names) {
		return strings.Join(names, sep)
	}
	return fmt.Sprintf("%s%s... and %d more", strings.Join(names, sep), sep, total-len(names))
}

// messageHosts formats hosts as %v does ("[a b]"), bounded by messageList.
func messageHosts(hosts []string) string {
	return "[" + messageList(hosts, len(hosts), " ") + "]"
}

// checkSubset is Istio's virtualservice/destinationrules.go: the subset of
// a destination host of a VirtualService in namespace ns must be defined by a
// DestinationRule whose host names the same object (Index.subsetKey): a
// Service by its FQDN or short name, any other host by the host as written in
// the VirtualService's own namespace. A wildcard DestinationRule host does not
// cover a destination, and an external host's subsets must be defined in the
// VirtualService's namespace.
func (ix *Index) checkSubset(c *collector, p destPath, ns, host, subset string, mirror bool) {
	v, sk := ix.current(), ix.subsetKey(ns, host)
	c.w.n++
	if v.subsetNames[sk][subset] { // a lookup: a scan of every subset per destination took seconds
		return
	}
	c.add(CodeReferencedResourceNotFound, func() Finding {
		reftype := "host+subset in destinationrule"
		if mirror {
			reftype = "mirror+subset in destinationrule"
		}
		return Finding{Field: p.path().Child("subset").String(), Message: ix.subsetMessage(v, sk, ns, host, subset, &c.w), Code: CodeReferencedResourceNotFound,
			Args: []string{reftype, host + "+" + subset}}
	})
}

// subsetMessage words checkSubset's finding for subset of host (subset key sk) in namespace ns.
func (ix *Index) subsetMessage(v *view, sk Key, ns, host, subset string, w *work) string {
	fh := ix.fqdn(host, ns)
	drs := v.drSubsets[sk]
	if len(drs) == 0 {
		if elsewhere, total := ix.firstDestinationRulesFor(fh, maxMessageNames, w); total > 0 {
			names := make([]string, len(elsewhere))
			for i, k := range elsewhere {
				names[i] = k.String()
			}
			return fmt.Sprintf("subset %q not found: no DestinationRule for host %q in namespace %s (%s does not count: a wildcard host, or another namespace)",
				subset, host, ns, messageList(names, total, ", "))
		}
		return fmt.Sprintf("subset %q not found: no DestinationRule for host %q", subset, fh)
	}
	return fmt.Sprintf("subset %q is not defined by DestinationRule %s for host %q", subset, joinKeys(drs, ", "), fh)
}

func (ix *Index) checkDestinationRule(c *collector, k Key, dr *networking.DestinationRule) {
	h := dr.GetHost()
	if h == "" || strings.Contains(h, "*") { // a deliberate difference, docs/compatibility.md
		return
	}
	// Istio's IST0174 (destinationrule/subset.go): the host as a destination
	// of the rule's namespace and exportTo sees it (GetDestinationHost).
	if ix.destinationHost(k.Namespace, dr.GetExportTo(), h, &c.w) == nil {
		c.add(CodeUnknownDestinationRuleHost, func() Finding {
			return Finding{Field: "spec.host", Message: ix.hostNotFound(k.Namespace, h, &c.w), Code: CodeUnknownDestinationRuleHost, Args: []string{h}}
		})
	}
}

// gatewayHosts is the set of server hosts of gw (in namespace gwNS) that
// admit VirtualService hosts of namespace vsNS: "ns/host" with ns "*", "."
// (the Gateway's namespace) or vsNS, as Istio's vsHostInGateway reads them
// (sanitizeServerHostNamespace, host.NamesForNamespace).
func gatewayHosts(gw *networking.Gateway, gwNS, vsNS string) *hostSet[struct{}] {
	var hosts []string
	for _, s := range gw.GetServers() {
		for _, sh := range s.GetHosts() {
			ns, host, ok := strings.Cut(sh, "/")
			if !ok {
				ns, host = "*", sh
			}
			if ns == "." {
				ns = gwNS
			}
			if ns == "*" || ns == vsNS {
				hosts = append(hosts, host)
			}
		}
	}
	return newHostSet(hosts)
}

// checkGateway is IST0145 as Istio's gateway/conflictinggateway.go reports
// it: for each server, the other Gateways with the same workload selector
// that have a server on the same port and bind with one of its hosts, hosts
// compared as written ("ns/" part included, model.CheckDuplicates); one
// message per server, naming them sorted, with Istio's text.
func (ix *Index) checkGateway(c *collector, k Key, gw *networking.Gateway) {
	// The other Gateways are found by the view's index of servers, not by
	// comparing each server with every server of every Gateway of the same
	// selector: for Gateways of thousands of servers that took seconds per
	// admission, under the index's read lock.
	byServer := ix.current().gwServers
	sk := SelectorKey(gw.GetSelector())
	selector := labels.SelectorFromSet(gw.GetSelector()).String()
	// The other Gateways of servers with the same port, bind and hosts, found
	// once: a Gateway may repeat one server thousands of times.
	conflicting := map[string][]Key{}
	for i, s := range gw.GetServers() {
		same := fmt.Sprintf("%d\x00%s\x00%s", s.GetPort().GetNumber(), s.GetBind(), strings.Join(s.GetHosts(), "\x00"))
		others, done := conflicting[same]
		c.w.n++
		if !done {
			found := map[Key]bool{}
			for _, h := range s.GetHosts() {
				c.w.n++
				for _, o := range byServer[gatewayServer{sk, s.GetPort().GetNumber(), s.GetBind(), h}] {
					c.w.n++
					if o != k {
						found[o] = true
					}
				}
			}
			others = sortedKeys(found)
			conflicting[same] = others
		}
		if len(others) > 0 {
			c.add(CodeConflictingGateways, func() Finding {
				return Finding{Field: field.NewPath("spec", "servers").Index(i).String(), Message: fmt.Sprintf("Conflict with gateways %s (workload selector %s, port %d, hosts %s).",
					joinKeys(others, ","), selector, s.GetPort().GetNumber(), strings.Join(s.GetHosts(), ",")), Code: CodeConflictingGateways}
			})
		}
	}
}

// joinKeys names keys, bounded by messageList: only the names listed are
// formatted, as one check may name the same thousand objects per destination.
func joinKeys(keys []Key, sep string) string {
	names := make([]string, min(len(keys), maxMessageNames))
	for i := range names {
		names[i] = keys[i].String()
	}
	return messageList(names, len(keys), sep)
}

func sortedKeys[V any](m map[Key]V) []Key {
	keys := slices.Collect(maps.Keys(m))
	slices.SortFunc(keys, compareKeys)
	return keys
}

// Set records an object of any kind the index tracks (Gateway,
// VirtualService, DestinationRule, ServiceEntry); other kinds are ignored.
func (ix *Index) Set(kind string, k Key, spec proto.Message) {
	switch s := spec.(type) {
	case *networking.VirtualService:
		ix.SetVirtualService(k, s)
	case *networking.DestinationRule:
		ix.SetDestinationRule(k, s)
	case *networking.Gateway:
		ix.SetGateway(k, s)
	case *networking.ServiceEntry:
		ix.SetServiceEntry(k, s)
	}
}
