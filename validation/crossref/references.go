package crossref

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	networking "istio.io/api/networking/v1alpha3"
)

// Ref is an object another one refers to, as the checks resolve references:
// the Gateways a VirtualService binds to, the Services, ServiceEntries and
// DestinationRules of its destination hosts, the Service or ServiceEntry of a
// DestinationRule's host. Organisation rules see them as input.referenced.
type Ref struct {
	Kind string
	Key  Key
	// Spec is the stored spec; nil for a Kubernetes Service (the index
	// knows only that it exists).
	Spec proto.Message
}

// References returns the objects of the index that the object (kind, k,
// spec) refers to: its Gateways as Check reads them, and for each
// destination host the Service, every ServiceEntry covering it and every
// DestinationRule whose host covers it, exportTo not applied (wider than
// Check's Istio rules); sorted by kind then key, each once. Before SetReady
// it returns nil.
func (ix *Index) References(kind string, k Key, spec proto.Message) []Ref {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if !ix.ready {
		return nil
	}
	type refID struct {
		kind string
		key  Key
	}
	seen := map[refID]bool{}
	var out []Ref
	var w work
	add := func(r Ref) {
		if id := (refID{r.Kind, r.Key}); !seen[id] {
			seen[id] = true
			out = append(out, r)
		}
	}
	// Each host, and each list of the view's host sets (the objects of one
	// host, shared by every destination it covers), is read once: thousands
	// of destinations under one wildcard host re-read its thousands of
	// objects each.
	v := ix.current()
	hostsDone := map[string]bool{}
	listsDone := map[*Key]bool{}
	once := func(l []Key, fn func(Key)) {
		if len(l) == 0 || listsDone[&l[0]] {
			return
		}
		listsDone[&l[0]] = true
		w.n += len(l)
		for _, k := range l {
			fn(k)
		}
	}
	host := func(fqdn string) {
		w.n++
		if _, ok := ix.services[fqdn]; ok {
			if name, rest, ok := strings.Cut(fqdn, "."); ok {
				if ns, _, ok := strings.Cut(rest, "."); ok {
					add(Ref{Kind: "Service", Key: Key{ns, name}})
				}
			}
		}
		v.seHosts.coveringLists(fqdn, &w, func(l []Key) {
			once(l, func(sk Key) { add(Ref{Kind: "ServiceEntry", Key: sk, Spec: ix.serviceEntries[sk]}) })
		})
	}
	switch s := spec.(type) {
	case *networking.VirtualService:
		for _, g := range s.GetGateways() {
			w.n++
			if g == "mesh" {
				continue
			}
			gk := ix.gatewayKey(g, k.Namespace)
			if gw, ok := ix.gateways[gk]; ok {
				add(Ref{Kind: "Gateway", Key: gk, Spec: gw})
			}
		}
		dest := func(d *networking.Destination) {
			if d == nil || d.GetHost() == "" || strings.Contains(d.GetHost(), "*") {
				return
			}
			w.n++
			fh := ix.fqdn(d.GetHost(), k.Namespace)
			if hostsDone[fh] {
				return
			}
			hostsDone[fh] = true
			host(fh)
			// The DestinationRules whose host covers this one
			// (the lists firstDestinationRulesFor merges).
			drs := func(l []Key) {
				once(l, func(dk Key) { add(Ref{Kind: "DestinationRule", Key: dk, Spec: ix.destinationRules[dk]}) })
			}
			drs(v.drByHost[fh])
			v.drWild.coveringLists(fh, &w, drs)
		}
		for _, r := range s.GetHttp() {
			for _, d := range r.GetRoute() {
				dest(d.GetDestination())
			}
			dest(r.GetMirror())
			for _, m := range r.GetMirrors() {
				dest(m.GetDestination())
			}
		}
		for _, r := range s.GetTcp() {
			for _, d := range r.GetRoute() {
				dest(d.GetDestination())
			}
		}
		for _, r := range s.GetTls() {
			for _, d := range r.GetRoute() {
				dest(d.GetDestination())
			}
		}
	case *networking.DestinationRule:
		if h := s.GetHost(); h != "" && !strings.Contains(h, "*") {
			host(ix.fqdn(h, k.Namespace))
		}
	}
	sortRefs(out)
	if workHook != nil {
		workHook(w.n)
	}
	return out
}

func sortRefs(refs []Ref) {
	slices.SortFunc(refs, func(a, b Ref) int {
		if c := strings.Compare(a.Kind, b.Kind); c != 0 {
			return c
		}
		return compareKeys(a.Key, b.Key)
	})
}

// NamespaceLabels returns a copy of the labels recorded for namespace ns (nil when unknown).
func (ix *Index) NamespaceLabels(ns string) map[string]string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return maps.Clone(ix.namespaces[ns])
}

// Object renders the reference as a Kubernetes object (apiVersion, kind,
// metadata.name/namespace and, for mesh kinds, the spec in its JSON form), as
// organisation rules see it in input.referenced.
func (r Ref) Object() (map[string]any, error) {
	obj := map[string]any{
		"apiVersion": "networking.istio.io/v1",
		"kind":       r.Kind,
		"metadata":   map[string]any{"name": r.Key.Name, "namespace": r.Key.Namespace},
	}
	if r.Kind == "Service" {
		obj["apiVersion"] = "v1"
	}
	if r.Spec != nil {
		data, err := protojson.Marshal(r.Spec)
		if err != nil {
			return nil, err
		}
		var spec map[string]any
		if err := json.Unmarshal(data, &spec); err != nil {
			return nil, err
		}
		obj["spec"] = spec
	}
	return obj, nil
}

// Object is one mesh object of a set indexed at once (IndexOf).
type Object struct {
	Kind string
	Key  Key
	Spec proto.Message
}

// IndexOf indexes a whole set (offline files or a cluster snapshot) and marks
// it ready: the Services and namespaces given, and every mesh object.
func IndexOf(domain string, services []Key, namespaces map[string]map[string]string, objects []Object) *Index {
	ix := NewIndex(domain)
	for _, s := range services {
		ix.SetService(s.Namespace, s.Name, true)
	}
	for ns, labels := range namespaces {
		ix.SetNamespace(ns, labels, true)
	}
	for _, o := range objects {
		ix.Set(o.Kind, o.Key, o.Spec)
	}
	ix.SetReady()
	return ix
}
