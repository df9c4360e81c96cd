package authzref

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"
)

// Case is one policy set and one request.
type Case struct {
	Set Set
	Req Request
}

// Clone deep-copies a case.
func (c Case) Clone() Case {
	out := Case{Req: c.Req, Set: Set{Mesh: c.Set.Mesh}}
	out.Set.Mesh.TrustDomainAliases = append([]string(nil), c.Set.Mesh.TrustDomainAliases...)
	for _, ap := range c.Set.APs {
		out.Set.APs = append(out.Set.APs, ap.DeepCopy())
	}
	for _, pa := range c.Set.PAs {
		out.Set.PAs = append(out.Set.PAs, pa.DeepCopy())
	}
	if c.Req.Headers != nil {
		out.Req.Headers = map[string]string{}
		for k, v := range c.Req.Headers {
			out.Req.Headers[k] = v
		}
	}
	return out
}

// mutations lists every one-step simplification of c, each applied to c in
// place: drop a policy, a list element (rule, from, to, when, value), a map
// entry, a field; drop a request header, the token, the aliases.
func (c *Case) mutations() []func() {
	var out []func()
	for i := range c.Set.APs {
		out = append(out, func() { c.Set.APs = append(c.Set.APs[:i:i], c.Set.APs[i+1:]...) })
	}
	for i := range c.Set.PAs {
		out = append(out, func() { c.Set.PAs = append(c.Set.PAs[:i:i], c.Set.PAs[i+1:]...) })
	}
	if len(c.Set.Mesh.TrustDomainAliases) > 0 {
		out = append(out, func() { c.Set.Mesh.TrustDomainAliases = nil })
	}
	if c.Set.Mesh.GatewayNumTrustedProxies > 0 {
		out = append(out, func() { c.Set.Mesh.GatewayNumTrustedProxies = 0 })
	}
	if c.Set.Mesh.GatewayProxyProtocol {
		out = append(out, func() { c.Set.Mesh.GatewayProxyProtocol = false })
	}
	for _, ap := range c.Set.APs {
		if len(ap.Annotations) > 0 {
			out = append(out, func() { ap.Annotations = nil })
		}
		out = append(out, protoMutations(ap.Spec.ProtoReflect())...)
	}
	for _, pa := range c.Set.PAs {
		out = append(out, protoMutations(pa.Spec.ProtoReflect())...)
	}
	for _, k := range sortedKeys(c.Req.Headers) {
		out = append(out, func() { delete(c.Req.Headers, k) })
	}
	if c.Req.JWT != nil {
		out = append(out, func() { c.Req.JWT = nil })
	}
	// Request values towards plain ones, so the printed request shows only
	// what matters.
	simplify := func(field *string, plain string) {
		if *field != plain {
			out = append(out, func() { *field = plain })
		}
	}
	simplify(&c.Req.Principal, "")
	simplify(&c.Req.SrcIP, "10.0.0.5")
	simplify(&c.Req.ProxyClientIP, "10.0.0.5")
	simplify(&c.Req.SNI, "")
	for _, f := range []*bool{&c.Req.TLS, &c.Req.TLSSession, &c.Req.TLSUnknown} {
		if *f {
			out = append(out, func() { *f = false })
		}
	}
	if !c.Req.TCP {
		simplify(&c.Req.Method, "GET")
		simplify(&c.Req.Path, "/")
		simplify(&c.Req.Host, "web.foo.svc")
	}
	return out
}

// Class names the kind of a (shrunk) case: the policy fields and when keys
// it uses, for grouping disagreements.
func (c Case) Class() string {
	var parts []string
	for _, pa := range c.Set.PAs {
		parts = append(parts, "PA("+pa.Spec.GetMtls().GetMode().String()+")")
	}
	for _, ap := range c.Set.APs {
		fields := map[string]bool{}
		var walk func(m protoreflect.Message)
		walk = func(m protoreflect.Message) {
			m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
				switch {
				case fd.IsList() && fd.Message() != nil:
					for i := 0; i < v.List().Len(); i++ {
						walk(v.List().Get(i).Message())
					}
				case fd.Message() != nil && !fd.IsMap():
					walk(v.Message())
				case fd.Name() == "key":
					fields["when:"+v.String()] = true
				case fd.Name() != "values" && fd.Name() != "not_values":
					fields[string(fd.Name())] = true
				}
				return true
			})
		}
		walk(ap.Spec.ProtoReflect())
		ks := make([]string, 0, len(fields))
		for k := range fields {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		parts = append(parts, "AP("+ap.Spec.GetAction().String()+":"+strings.Join(ks, ",")+")")
	}
	if len(c.Set.Mesh.TrustDomainAliases) > 0 {
		parts = append(parts, "aliases")
	}
	return strings.Join(parts, " ")
}

func protoMutations(m protoreflect.Message) []func() {
	var out []func()
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				out = append(out, func() {
					for j := i; j < l.Len()-1; j++ {
						l.Set(j, l.Get(j+1))
					}
					l.Truncate(l.Len() - 1)
				})
			}
			if fd.Message() != nil {
				for i := 0; i < l.Len(); i++ {
					out = append(out, protoMutations(l.Get(i).Message())...)
				}
			}
		case fd.IsMap():
			v.Map().Range(func(k protoreflect.MapKey, _ protoreflect.Value) bool {
				out = append(out, func() { m.Mutable(fd).Map().Clear(k) })
				return true
			})
		case fd.Message() != nil:
			out = append(out, func() { m.Clear(fd) })
			out = append(out, protoMutations(v.Message())...)
		default:
			out = append(out, func() { m.Clear(fd) })
		}
		return true
	})
	return out
}

// Shrink repeatedly applies the first simplification that keeps fails true,
// until none does, and returns the minimal case.
func Shrink(c Case, fails func(Case) bool) Case {
	for progress := true; progress; {
		progress = false
		for j := 0; ; j++ {
			try := c.Clone()
			muts := try.mutations()
			if j >= len(muts) {
				break
			}
			muts[j]()
			if fails(try) {
				// keep it and retry the same position: the list shifted
				c, progress = try, true
				j--
			}
		}
	}
	return c
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// Format prints a case as the mesh settings, the policies as YAML and the request.
func (c Case) Format() string {
	var b strings.Builder
	fmt.Fprintf(&b, "mesh: rootNamespace=%s trustDomain=%s trustDomainAliases=%v pathNormalization=BASE defaultConfig.gatewayTopology.numTrustedProxies=%d proxyProtocol=%v\n",
		c.Set.Mesh.RootNamespace, c.Set.Mesh.TrustDomain, c.Set.Mesh.TrustDomainAliases, c.Set.Mesh.GatewayNumTrustedProxies, c.Set.Mesh.GatewayProxyProtocol)
	for _, pa := range c.Set.PAs {
		o := pa.DeepCopy()
		o.APIVersion, o.Kind = "security.istio.io/v1", "PeerAuthentication"
		b.WriteString("---\n" + toYAML(o))
	}
	for _, ap := range c.Set.APs {
		o := ap.DeepCopy()
		o.APIVersion, o.Kind = "security.istio.io/v1", "AuthorizationPolicy"
		b.WriteString("---\n" + toYAML(o))
	}
	r := c.Req
	fmt.Fprintf(&b, "---\nrequest: to %s/%v (%s) port %d, principal=%q srcIP=%s proxyClientIP=%s sni=%q tls=%v tls_session=%v tls-unknown=%v", r.Dest.Namespace, r.Dest.Labels, r.Dest.IP, r.DstPort, r.Principal, r.SrcIP, r.ProxyClientIP, r.SNI, r.TLS, r.TLSSession, r.TLSUnknown)
	fmt.Fprintf(&b, " [%s]", r.Dest.Proxy)
	if r.Dest.Router() {
		b.WriteString(" [gateway]")
	}
	if r.Dest.ProxyConfig != "" {
		fmt.Fprintf(&b, " [proxy.istio.io/config %q]", r.Dest.ProxyConfig)
	}
	if r.TCP {
		b.WriteString(" TCP\n")
	} else {
		fmt.Fprintf(&b, " HTTP %s %q host=%q headers=%v", r.Method, r.Path, r.Host, r.Headers)
		if r.JWT != nil {
			fmt.Fprintf(&b, " jwt(iss=%s sub=%s)", claimString(r.JWT, "iss"), claimString(r.JWT, "sub"))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// claimString prints a claim: quoted if a string, "<absent>" if the token
// lacks it, else its Go value.
func claimString(j *JWT, name string) string {
	v, ok := j.Claims[name]
	switch s, isString := v.(string); {
	case !ok:
		return "<absent>"
	case isString:
		return fmt.Sprintf("%q", s)
	default:
		return fmt.Sprintf("%v", v)
	}
}

func toYAML(o any) string {
	y, err := yaml.Marshal(o)
	if err != nil {
		return fmt.Sprintf("<%v>\n", err)
	}
	return strings.ReplaceAll(string(y), "  creationTimestamp: null\n", "")
}

// Valid reports whether a (shrunk) set still has the shape the generator
// promises, so shrinking never wanders into policies validation rejects:
// no empty source/operation, every condition with values or notValues,
// CUSTOM with its provider, DENY and CUSTOM with a rule.
func (s Set) Valid() bool {
	for _, ap := range s.APs {
		if ap.Spec.GetAction().String() == "CUSTOM" && ap.Spec.GetProvider().GetName() == "" {
			return false
		}
		if a := ap.Spec.GetAction().String(); (a == "DENY" || a == "CUSTOM") && len(ap.Spec.GetRules()) == 0 {
			return false
		}
		if ap.Spec.GetAction().String() == "CUSTOM" {
			for _, r := range ap.Spec.GetRules() {
				if customRule(r).String() != r.String() {
					return false
				}
			}
		}
		if ap.Spec.GetAction().String() != "CUSTOM" && ap.Spec.GetProvider() != nil {
			return false
		}
		for _, r := range ap.Spec.GetRules() {
			for _, f := range r.GetFrom() {
				if f.GetSource() == nil || f.GetSource().String() == "" {
					return false
				}
			}
			for _, t := range r.GetTo() {
				if t.GetOperation() == nil || t.GetOperation().String() == "" {
					return false
				}
			}
			for _, w := range r.GetWhen() {
				if w.GetKey() == "" || len(w.GetValues())+len(w.GetNotValues()) == 0 {
					return false
				}
			}
		}
	}
	for _, pa := range s.PAs {
		if len(pa.Spec.GetPortLevelMtls()) > 0 && len(pa.Spec.GetSelector().GetMatchLabels()) == 0 {
			return false
		}
	}
	return true
}
