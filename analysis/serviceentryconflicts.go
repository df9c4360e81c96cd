package analysis

import (
	"fmt"
	"slices"
	"strings"

	networking "istio.io/api/networking/v1alpha3"

	"github.com/meshguard/meshguard/validation/crossref"
)

// ConflictingServiceEntryProtocol is the code of Istio's ServiceEntry
// protocol conflict analyzer (name, level and text from Istio's IST0177
// reference page, istio.io docs/reference/config/analysis/ist0177: no
// stored messages.yaml has it yet).
const ConflictingServiceEntryProtocol = "IST0177"

func init() {
	Types[ConflictingServiceEntryProtocol] = MessageType{ConflictingServiceEntryProtocol, "ConflictingServiceEntryProtocol", Warning}
}

// seHostPort is one host and port of a ServiceEntry as seen in one scope
// (an exportTo namespace, "*" for every namespace).
type seHostPort struct {
	scope, host string
	port        uint32
}

// seProtocol is one ServiceEntry port under a seHostPort.
type seProtocol struct {
	protocol string
	o        Object
}

// serviceEntryProtocolConflicts is Istio's
// ConflictingServiceEntryProtocolAnalyzer.Analyze (Istio:
// pkg/config/analysis/analyzers/serviceentry/conflictingserviceentries.go at
// 2392533cac45): every ServiceEntry host and port number is keyed by each
// scope of its exportTo (Istio's exportToScopes, the rule of
// crossref.ExportScopes: "*" when empty or naming "*",
// Istio's util.IsExportToAllNamespaces; else each entry, "." read as the
// ServiceEntry's namespace and "~" kept as a scope of its own). A key of a
// namespace also takes the entries of the same host and port exported to
// "*". When the entries of a key have two or more protocols (compared
// upper-cased; an unset protocol is one of them, ""), each ServiceEntry of
// the key gets IST0177 at metadata.name naming the ServiceEntries
// ("ns/name", sorted, once each), the host and port as written and the
// protocols (upper-cased, sorted) — once only: a ServiceEntry in several
// conflicts is reported for the first. Istio walks its keys in Go map order
// (unspecified); meshguard walks them in input order (ServiceEntry, then
// exportTo scope, host, port as written), so the message a ServiceEntry in
// several conflicts gets is stable.
func serviceEntryProtocolConflicts(in *Input) []Message {
	var keys []seHostPort
	index := map[seHostPort][]seProtocol{}
	for _, o := range in.Objects {
		se, ok := o.Spec.(*networking.ServiceEntry)
		if !ok {
			continue
		}
		for _, scope := range crossref.ExportScopes(se.GetExportTo(), o.Namespace) {
			for _, h := range se.GetHosts() {
				for _, p := range se.GetPorts() {
					k := seHostPort{scope: scope, host: h, port: p.GetNumber()}
					if _, seen := index[k]; !seen {
						keys = append(keys, k)
					}
					index[k] = append(index[k], seProtocol{protocol: p.GetProtocol(), o: o})
				}
			}
		}
	}
	var out []Message
	reported := map[[2]string]bool{}
	for _, k := range keys {
		entries := index[k]
		if k.scope != "*" {
			entries = append(slices.Clip(entries), index[seHostPort{scope: "*", host: k.host, port: k.port}]...)
		}
		var protocols, names []string
		for _, e := range entries {
			if p := strings.ToUpper(e.protocol); !slices.Contains(protocols, p) {
				protocols = append(protocols, p)
			}
			if n := e.o.Namespace + "/" + e.o.Name; !slices.Contains(names, n) {
				names = append(names, n)
			}
		}
		if len(protocols) < 2 {
			continue
		}
		slices.Sort(protocols)
		slices.Sort(names)
		text := fmt.Sprintf("Multiple ServiceEntries (%s) define the same host %q and port %d with conflicting protocols (%s).",
			strings.Join(names, ", "), k.host, k.port, strings.Join(protocols, ", "))
		for _, e := range entries {
			id := [2]string{e.o.Namespace, e.o.Name}
			if reported[id] {
				continue
			}
			reported[id] = true
			out = append(out, newMessage(e.o, ConflictingServiceEntryProtocol, "metadata.name", text))
		}
	}
	return out
}
