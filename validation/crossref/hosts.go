package crossref

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
)

// This file resolves VirtualService destination hosts as Istio's analyzers
// do (pkg/config/analysis/analyzers/util/service_lookup.go
// InitServiceEntryHostMap and GetDestinationHost): every ServiceEntry host
// and every Service is keyed by a scope, the namespace it is exported to ("*"
// for all), and a destination sees the hosts exported to every namespace, to
// its own namespace or to a namespace its VirtualService is exported to.

// hostEntry is a Service or ServiceEntry as a destination sees it: Istio's
// analyzer turns a Service into a ServiceEntry with the Service's ports.
type hostEntry struct {
	ref        Ref
	ports      []uint32
	portsKnown bool
}

// scopedHost is one host of the lookup: scope "*" or a namespace, and the FQDN.
type scopedHost struct {
	scope, host string
	entry       *hostEntry
}

func scoped(scope, fqdn string) string { return scope + "/" + fqdn }

// ExportScopes lists the scopes of an exportTo field (ServiceEntry,
// VirtualService): "*" when empty or when it names "*", else each entry with
// "." read as the object's namespace ns ("~" stays "~": visible nowhere).
func ExportScopes(exportTo []string, ns string) []string {
	if len(exportTo) == 0 || slices.Contains(exportTo, "*") {
		return []string{"*"}
	}
	out := make([]string, 0, len(exportTo))
	for _, e := range exportTo {
		if e == "." {
			e = ns
		}
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// annotationScopes lists the scopes of a Service's networking.istio.io/exportTo
// annotation (Istio's getVisibleNamespacesFromExportToAnno): its
// comma-separated entries, trimmed as pilot trims them (ConvertService; the
// analyzer does not: docs/compatibility.md), read as exportTo.
func annotationScopes(annotation, ns string) []string {
	var entries []string
	if annotation != "" {
		entries = strings.Split(annotation, ",")
		for i := range entries {
			entries[i] = strings.TrimSpace(entries[i])
		}
	}
	return ExportScopes(entries, ns)
}

// buildHosts keys every ServiceEntry host and every Service by scope, in that
// order, so that a Service replaces a ServiceEntry of the same scoped host
// (Istio fills its map in that order); among ServiceEntries the last by
// namespace/name wins. It returns the map and its wildcard hosts, sorted.
func (ix *Index) buildHosts() (map[string]*hostEntry, []scopedHost) {
	hosts := map[string]*hostEntry{}
	for _, k := range sortedKeys(ix.serviceEntries) {
		se := ix.serviceEntries[k]
		e := &hostEntry{ref: Ref{Kind: "ServiceEntry", Key: k, Spec: se}, portsKnown: true}
		for _, p := range se.GetPorts() {
			e.ports = append(e.ports, p.GetNumber())
		}
		for _, h := range se.GetHosts() {
			for _, s := range ExportScopes(se.GetExportTo(), k.Namespace) {
				hosts[scoped(s, ix.fqdn(h, k.Namespace))] = e
			}
		}
	}
	fqdns := make([]string, 0, len(ix.services))
	for f := range ix.services {
		fqdns = append(fqdns, f)
	}
	slices.Sort(fqdns)
	for _, f := range fqdns {
		s := ix.services[f]
		e := &hostEntry{ref: Ref{Kind: "Service", Key: s.Key}, ports: s.Ports, portsKnown: s.PortsKnown}
		for _, sc := range annotationScopes(s.ExportTo, s.Namespace) {
			hosts[scoped(sc, f)] = e
		}
	}
	var wild []scopedHost
	for _, sh := range slices.Sorted(maps.Keys(hosts)) {
		scope, h, _ := strings.Cut(sh, "/")
		if strings.HasPrefix(h, "*") {
			wild = append(wild, scopedHost{scope, h, hosts[sh]})
		}
	}
	return hosts, wild
}

// destinationHost is Istio's GetDestinationHost: the Service or ServiceEntry
// a destination host of a VirtualService in namespace vsNS, exported with
// exportTo, refers to, or nil. Exact hosts are looked up in scope "*", then
// in the VirtualService's namespace (exportTo empty) or in each namespace of
// its exportTo; wildcard hosts in scope "*" or the VirtualService's namespace
// last, compared with the host as written.
func (ix *Index) destinationHost(vsNS string, exportTo []string, host string, w *work) *hostEntry {
	v := ix.current()
	w.n += 1 + len(exportTo)
	fq := ix.fqdn(host, vsNS)
	if e := v.hosts[scoped("*", fq)]; e != nil {
		return e
	}
	scopes := exportTo
	if len(scopes) == 0 {
		scopes = []string{vsNS}
	}
	for _, s := range scopes {
		if s == "." {
			s = vsNS
		}
		if e := v.hosts[scoped(s, fq)]; e != nil {
			return e
		}
	}
	// The first in wildHosts' order, as a scan of it would find.
	first := -1
	v.wildIndex.covering(host, w, func(i int) {
		if w := v.wildHosts[i]; (w.scope == "*" || w.scope == vsNS) && (first < 0 || i < first) {
			first = i
		}
	})
	if first < 0 {
		return nil
	}
	return v.wildHosts[first].entry
}

// portFinding is Istio's checkServiceEntryPorts for destination d (at path
// p) resolved to e: without a port, a host with more than one port is
// IST0112; a port the host does not define is IST0101 "host:port". Nothing
// when the ports are unknown (a Service known by name only).
func portFinding(c *collector, p destPath, d *networking.Destination, e *hostEntry) {
	if !e.portsKnown {
		return
	}
	if d.GetPort() == nil {
		if len(e.ports) <= 1 {
			return
		}
		c.add(CodeVirtualServiceDestinationPortSelector, func() Finding {
			// Istio's %v of the ports, bounded as other lists (messageList): a
			// host of thousands of ports, once per destination, made hundreds of MiB.
			ports := make([]string, min(len(e.ports), maxMessageNames))
			for i := range ports {
				ports[i] = strconv.FormatUint(uint64(e.ports[i]), 10)
			}
			return Finding{Field: p.path().Child("host").String(), Message: fmt.Sprintf(
				"This VirtualService routes to a service %q that exposes multiple ports [%s]. Specifying a port in the destination is required to disambiguate.",
				d.GetHost(), messageList(ports, len(e.ports), " ")), Code: CodeVirtualServiceDestinationPortSelector}
		})
		return
	}
	if slices.Contains(e.ports, d.GetPort().GetNumber()) {
		return
	}
	c.add(CodeReferencedResourceNotFound, func() Finding {
		return Finding{Field: p.path().Child("port", "number").String(), Message: fmt.Sprintf("Referenced host:port not found: %q",
			fmt.Sprintf("%s:%d", d.GetHost(), d.GetPort().GetNumber())), Code: CodeReferencedResourceNotFound}
	})
}

// subsetKey is the object a destination host names for the subset check,
// as Istio's util.GetResourceNameFromHost: name.ns.svc.<domain> is Key{ns,
// name}; any other host, short, external or wildcard, is the host itself in
// namespace ns (the VirtualService's or the DestinationRule's).
func (ix *Index) subsetKey(ns, host string) Key {
	if rest, ok := strings.CutSuffix(host, ".svc."+ix.domain); ok {
		if i := strings.LastIndex(rest, "."); i > 0 && i < len(rest)-1 {
			return Key{rest[i+1:], rest[:i]}
		}
	}
	return Key{ns, host}
}
