package validation

import (
	"fmt"
	"strings"

	networking "istio.io/api/networking/v1alpha3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// DestinationRule rules: Istio's ValidateDestinationRule (pkg/config/validation/validation.go
// and agent.ValidateTLS / locality checks), with field paths.

const maxMaglevTableSize = 5000011

func validateDestinationRule(meta metav1.ObjectMeta, dr *networking.DestinationRule, f *Findings) {
	p := field.NewPath("spec")
	switch h := dr.GetHost(); {
	case h == "":
		f.Required(p.Child("host"), "empty domain name not allowed")
	case isIP(h):
		f.Error(p.Child("host"), h, "host must be a service name, not an IP address; define a ServiceEntry for the IP and use its host")
	default:
		validateWildcardDomain(p.Child("host"), h, f)
	}
	seen := map[string]int{}
	for i, s := range dr.GetSubsets() {
		sp := p.Child("subsets").Index(i)
		if s == nil {
			f.Required(sp, "subset must not be null")
			continue
		}
		if prev, dup := seen[s.GetName()]; dup {
			f.Error(sp.Child("name"), s.GetName(), fmt.Sprintf("duplicate subset names: %s (also subsets[%d])", s.GetName(), prev))
		} else {
			seen[s.GetName()] = i
		}
		if !isDNSLabel(s.GetName()) { // Istio's validateSubsetName: labels.IsDNS1123Label, upper case allowed
			f.Error(sp.Child("name"), s.GetName(), "subset name is invalid: must be a DNS-1123 label")
		}
		validateLabels(sp.Child("labels"), s.GetLabels(), f)
		if s.GetTrafficPolicy() != nil {
			validateTrafficPolicy(sp.Child("trafficPolicy"), s.GetTrafficPolicy(), meta.Namespace, f)
		}
	}
	if dr.GetTrafficPolicy() != nil {
		validateTrafficPolicy(p.Child("trafficPolicy"), dr.GetTrafficPolicy(), meta.Namespace, f)
	}
	validateExportTo(p.Child("exportTo"), dr.GetExportTo(), meta.Namespace, false, f)
	if dr.GetWorkloadSelector() != nil {
		validateWorkloadSelector(p.Child("workloadSelector"), dr.GetWorkloadSelector(), f)
		for i, e := range dr.GetExportTo() {
			if e != "." && e != meta.Namespace {
				f.Error(p.Child("exportTo").Index(i), e, "a DestinationRule with a workloadSelector may only be exported to its own namespace")
			}
		}
	}
}

func validateTrafficPolicy(p *field.Path, tp *networking.TrafficPolicy, ns string, f *Findings) {
	if tp.GetOutlierDetection() == nil && tp.GetConnectionPool() == nil && tp.GetLoadBalancer() == nil && tp.GetTls() == nil &&
		len(tp.GetPortLevelSettings()) == 0 && tp.GetTunnel() == nil && tp.GetProxyProtocol() == nil && tp.GetRetryBudget() == nil {
		f.Required(p, "traffic policy must have at least one field")
	}
	if tp.GetTunnel() != nil && tp.GetProxyProtocol() != nil {
		f.Error(p.Child("proxyProtocol"), field.OmitValueType{}, "tunnel and proxyProtocol cannot be set together")
	}
	if t := tp.GetTunnel(); t != nil {
		tp := p.Child("tunnel")
		if pr := t.GetProtocol(); pr != "" && pr != "CONNECT" && pr != "POST" {
			f.Error(tp.Child("protocol"), pr, "tunnel protocol must be CONNECT or POST")
		}
		if h := t.GetTargetHost(); !isIP(h) {
			validateFQDN(tp.Child("targetHost"), h, f)
		}
		validatePort(tp.Child("targetPort"), t.GetTargetPort(), f)
	}
	validateOutlierDetection(p.Child("outlierDetection"), tp.GetOutlierDetection(), f)
	validateConnectionPool(p.Child("connectionPool"), tp.GetConnectionPool(), f)
	validateLoadBalancer(p.Child("loadBalancer"), tp.GetLoadBalancer(), tp.GetOutlierDetection(), f)
	validateClientTLS(p.Child("tls"), tp.GetTls(), ns, f)
	for i, pl := range tp.GetPortLevelSettings() {
		pp := p.Child("portLevelSettings").Index(i)
		if pl == nil {
			f.Required(pp, "port level setting must not be null")
			continue
		}
		if pl.GetPort() == nil {
			f.Required(pp.Child("port"), "port must be specified")
		} else {
			validatePort(pp.Child("port", "number"), pl.GetPort().GetNumber(), f)
		}
		if pl.GetOutlierDetection() == nil && pl.GetConnectionPool() == nil && pl.GetLoadBalancer() == nil && pl.GetTls() == nil {
			f.Required(pp, "port traffic policy must have at least one of outlierDetection, connectionPool, loadBalancer or tls")
		}
		validateOutlierDetection(pp.Child("outlierDetection"), pl.GetOutlierDetection(), f)
		validateConnectionPool(pp.Child("connectionPool"), pl.GetConnectionPool(), f)
		validateLoadBalancer(pp.Child("loadBalancer"), pl.GetLoadBalancer(), pl.GetOutlierDetection(), f)
		validateClientTLS(pp.Child("tls"), pl.GetTls(), ns, f)
	}
}

func validateOutlierDetection(p *field.Path, o *networking.OutlierDetection, f *Findings) {
	if o == nil {
		return
	}
	if o.GetBaseEjectionTime() != nil {
		validateDuration(p.Child("baseEjectionTime"), o.GetBaseEjectionTime(), f)
	}
	if o.GetInterval() != nil {
		validateDuration(p.Child("interval"), o.GetInterval(), f)
	}
	if o.GetConsecutiveErrors() != 0 {
		f.Warn(p.Child("consecutiveErrors"), int64(o.GetConsecutiveErrors()), "outlier detection consecutive errors is deprecated, use consecutiveGatewayErrors or consecutive5xxErrors instead")
	}
	if o.GetConsecutiveLocalOriginFailures().GetValue() > 0 && !o.GetSplitExternalLocalOriginErrors() {
		f.Error(p.Child("consecutiveLocalOriginFailures"), int64(o.GetConsecutiveLocalOriginFailures().GetValue()), "requires splitExternalLocalOriginErrors to be true")
	}
	if v := o.GetMaxEjectionPercent(); v < 0 || v > 100 {
		f.Error(p.Child("maxEjectionPercent"), int64(v), "must be in the range 0..100")
	}
	if v := o.GetMinHealthPercent(); v < 0 || v > 100 {
		f.Error(p.Child("minHealthPercent"), int64(v), "must be in the range 0..100")
	}
}

// validateConnectionPool checks DestinationRule connection pool settings; the
// Sidecar kind reuses it for inbound connection pools (Istio's ValidateSidecar).
func validateConnectionPool(p *field.Path, c *networking.ConnectionPoolSettings, f *Findings) {
	if c == nil {
		return
	}
	if c.GetHttp() == nil && c.GetTcp() == nil {
		f.Required(p, "connection pool must have at least one field (http or tcp)")
	}
	if h := c.GetHttp(); h != nil {
		hp := p.Child("http")
		for _, v := range []struct {
			name string
			val  int32
		}{{"http1MaxPendingRequests", h.GetHttp1MaxPendingRequests()}, {"http2MaxRequests", h.GetHttp2MaxRequests()},
			{"maxRequestsPerConnection", h.GetMaxRequestsPerConnection()}, {"maxRetries", h.GetMaxRetries()}, {"maxConcurrentStreams", h.GetMaxConcurrentStreams()}} {
			if v.val < 0 {
				f.Error(hp.Child(v.name), int64(v.val), "must not be negative")
			}
		}
		if h.GetIdleTimeout() != nil {
			validateDuration(hp.Child("idleTimeout"), h.GetIdleTimeout(), f)
		}
		if h.GetH2UpgradePolicy() == networking.ConnectionPoolSettings_HTTPSettings_UPGRADE && h.GetUseClientProtocol() {
			f.Error(hp.Child("useClientProtocol"), true, "useClientProtocol cannot be set together with h2UpgradePolicy UPGRADE")
		}
		if ka := h.GetHttp2KeepAlive(); ka != nil {
			kp := hp.Child("http2KeepAlive")
			if ka.GetInterval() == nil {
				f.Required(kp.Child("interval"), "http2KeepAlive needs both interval and timeout")
			} else {
				validateDuration(kp.Child("interval"), ka.GetInterval(), f)
			}
			if ka.GetTimeout() == nil {
				f.Required(kp.Child("timeout"), "http2KeepAlive needs both interval and timeout")
			} else {
				validateDuration(kp.Child("timeout"), ka.GetTimeout(), f)
			}
		}
	}
	if t := c.GetTcp(); t != nil {
		tp := p.Child("tcp")
		if t.GetMaxConnections() < 0 {
			f.Error(tp.Child("maxConnections"), int64(t.GetMaxConnections()), "must not be negative")
		}
		if t.GetConnectTimeout() != nil {
			validateDuration(tp.Child("connectTimeout"), t.GetConnectTimeout(), f)
		}
		if t.GetMaxConnectionDuration() != nil {
			validateDuration(tp.Child("maxConnectionDuration"), t.GetMaxConnectionDuration(), f)
		}
		// 0 disables the TCP idle timeout, and Istio's validateConnectionPool skips
		// any value of 0 whole milliseconds (500µs); a negative one is still refused
		// (docs/compatibility.md "Shared building blocks").
		if it := t.GetIdleTimeout(); it != nil && (it.AsDuration().Milliseconds() != 0 || it.AsDuration() < 0) {
			validateDuration(tp.Child("idleTimeout"), it, f)
		}
		if ka := t.GetTcpKeepalive(); ka != nil {
			if ka.GetTime() != nil {
				validateDuration(tp.Child("tcpKeepalive", "time"), ka.GetTime(), f)
			}
			if ka.GetInterval() != nil {
				validateDuration(tp.Child("tcpKeepalive", "interval"), ka.GetInterval(), f)
			}
		}
	}
}

var topologyLabels = map[string]bool{"topology.kubernetes.io/region": true, "topology.kubernetes.io/zone": true, "topology.istio.io/subzone": true}

func validateLoadBalancer(p *field.Path, lb *networking.LoadBalancerSettings, od *networking.OutlierDetection, f *Findings) {
	if lb == nil {
		return
	}
	if ch := lb.GetConsistentHash(); ch != nil {
		cp := p.Child("consistentHash")
		if c := ch.GetHttpCookie(); c != nil {
			if c.GetName() == "" {
				f.Required(cp.Child("httpCookie", "name"), "cookie name is required")
			}
			names := map[string]bool{}
			for i, a := range c.GetAttributes() {
				ap := cp.Child("httpCookie", "attributes").Index(i).Child("name")
				if a.GetName() == "" {
					f.Required(ap, "cookie attribute name is required")
				} else if names[a.GetName()] {
					f.Error(ap, a.GetName(), "duplicate cookie attribute name")
				}
				names[a.GetName()] = true
			}
		}
		if ch.GetMinimumRingSize() != 0 {
			f.Warn(cp.Child("minimumRingSize"), int64(ch.GetMinimumRingSize()), "minimumRingSize is deprecated, use ringHash.minimumRingSize instead")
			if ch.GetRingHash() != nil || ch.GetMaglev() != nil {
				f.Error(cp.Child("minimumRingSize"), int64(ch.GetMinimumRingSize()), "cannot be set together with ringHash or maglev")
			}
		}
		if mg := ch.GetMaglev(); mg != nil {
			ts := mg.GetTableSize()
			switch {
			case ts == 0:
				f.Required(cp.Child("maglev", "tableSize"), "maglev table size is required")
			case ts >= maxMaglevTableSize:
				f.Error(cp.Child("maglev", "tableSize"), int64(ts), fmt.Sprintf("maglev table size must be below %d", maxMaglevTableSize))
			case !isPrime(ts):
				f.Error(cp.Child("maglev", "tableSize"), int64(ts), "maglev table size must be a prime number")
			}
		}
	}
	if lb.GetLocalityLbSetting() != nil && lb.GetZoneAwareLbSetting() != nil {
		f.Error(p.Child("zoneAwareLbSetting"), field.OmitValueType{}, "localityLbSetting and zoneAwareLbSetting cannot be set together")
	}
	if l := lb.GetLocalityLbSetting(); l != nil {
		validateLocalityLB(p.Child("localityLbSetting"), l, od, f)
	}
	if z := lb.GetZoneAwareLbSetting(); z != nil {
		zp := p.Child("zoneAwareLbSetting")
		for i, k := range z.GetFailoverPriority() {
			if topologyLabels[strings.SplitN(k, "=", 2)[0]] {
				f.Error(zp.Child("failoverPriority").Index(i), k, "failoverPriority must not use topology labels with zone-aware load balancing")
			}
		}
		for i, fo := range z.GetFailover() {
			validateFailover(zp.Child("failover").Index(i), fo.GetFrom(), fo.GetTo(), f)
		}
		if (len(z.GetFailover()) > 0 || len(z.GetFailoverPriority()) > 0) && od == nil {
			f.Warn(zp, nil, "outlier detection policy must be provided for failover")
		}
	}
	if w := lb.GetWarmup(); w != nil {
		wp := p.Child("warmup")
		if w.GetDuration() == nil {
			f.Required(wp.Child("duration"), "duration is required")
		} else {
			validateDuration(wp.Child("duration"), w.GetDuration(), f)
		}
		if mp := w.GetMinimumPercent(); mp != nil && (mp.GetValue() < 0 || mp.GetValue() > 100) {
			f.Error(wp.Child("minimumPercent"), mp.GetValue(), "must be in the range 0..100")
		}
		if a := w.GetAggression(); a != nil && a.GetValue() < 1 {
			f.Error(wp.Child("aggression"), a.GetValue(), "aggression should be greater than or equal to 1")
		}
	}
	if lb.GetWarmupDurationSecs() != nil {
		validateDuration(p.Child("warmupDurationSecs"), lb.GetWarmupDurationSecs(), f)
	}
}

func validateLocalityLB(p *field.Path, l *networking.LocalityLoadBalancerSetting, od *networking.OutlierDetection, f *Findings) {
	if len(l.GetDistribute()) > 0 && len(l.GetFailover()) > 0 {
		f.Error(p.Child("failover"), field.OmitValueType{}, "distribute and failover cannot be set together")
	}
	if len(l.GetFailover()) > 0 {
		for i, k := range l.GetFailoverPriority() {
			// The whole entry, as Istio compares it: "label=value" is an override.
			if topologyLabels[k] {
				f.Error(p.Child("failoverPriority").Index(i), k, "failoverPriority must not contain region/zone/subzone topology labels when failover is set")
			}
		}
	}
	// Overlaps are checked as Istio's validateLocalities does: each
	// locality against those listed before it, the froms across distribute
	// and the to localities of one entry (in sorted order: Istio walks the
	// map in random order, and this order finds every overlap it can find).
	var froms []int
	for i, d := range l.GetDistribute() {
		dp := p.Child("distribute").Index(i)
		if validateLocality(dp.Child("from"), d.GetFrom(), f) {
			for _, j := range froms {
				if prev := l.Distribute[j].GetFrom(); localitiesOverlap(prev, d.GetFrom()) {
					f.Error(dp.Child("from"), d.GetFrom(), fmt.Sprintf("locality overlaps with distribute[%d].from %q", j, prev))
				}
			}
			froms = append(froms, i)
		}
		sum := uint32(0)
		var tos []string
		for _, to := range sortedKeys(d.GetTo()) {
			w := d.GetTo()[to]
			if validateLocality(dp.Child("to").Key(to), to, f) {
				for _, prev := range tos {
					if localitiesOverlap(prev, to) {
						f.Error(dp.Child("to").Key(to), to, fmt.Sprintf("locality overlaps with %q", prev))
					}
				}
				tos = append(tos, to)
			}
			if w < 1 || w > 100 {
				f.Error(dp.Child("to").Key(to), int64(w), "weight must be in the range 1..100")
			}
			sum += w
		}
		if sum != 100 {
			f.Error(dp.Child("to"), int64(sum), "weights must sum to 100")
		}
	}
	for i, fo := range l.GetFailover() {
		validateFailover(p.Child("failover").Index(i), fo.GetFrom(), fo.GetTo(), f)
	}
	if (len(l.GetFailover()) > 0 || len(l.GetFailoverPriority()) > 0) && od == nil {
		f.Warn(p, nil, "outlier detection policy must be provided for failover")
	}
}

func validateFailover(p *field.Path, from, to string, f *Findings) {
	if from == to {
		f.Error(p.Child("to"), to, "failover 'from' and 'to' cannot be equal")
	}
	for _, x := range []struct{ name, v string }{{"from", from}, {"to", to}} {
		if strings.Contains(x.v, "/") || strings.Contains(x.v, "*") {
			f.Error(p.Child(x.name), x.v, "failover locality must be a region only (no '/' or '*')")
		}
	}
}

// validateLocality: region/zone/subzone with at most one "*", only at the
// end, and no empty segments; it reports whether l is well formed.
func validateLocality(p *field.Path, l string, f *Findings) bool {
	if l == "" {
		f.Required(p, "locality must not be empty")
		return false
	}
	ok := true
	if strings.Count(l, "*") > 1 || (strings.Contains(l, "*") && !strings.HasSuffix(l, "*")) {
		f.Error(p, l, "locality may contain one '*', only at the end")
		ok = false
	}
	for _, seg := range strings.Split(l, "/") {
		if seg == "" {
			f.Error(p, l, "locality must not have empty segments")
			return false
		}
	}
	return ok
}

// localitiesOverlap reports whether the well-formed locality l, listed
// after prev, overlaps it as in Istio's validateLocalities
// (pkg/config/validation/agent/validation.go): "*" covers everything after
// it, a region ("us" or "us/*") its zones, a zone ("us/z" or "us/z/*") its
// subzones; "u*" is a region name of its own, and a wildcard listed after a
// more specific locality does not overlap it.
func localitiesOverlap(prev, l string) bool {
	if prev == "*" {
		return true
	}
	// Region, zone and the rest as subzone (Istio's getLocalityParam).
	pp, lp := strings.SplitN(prev, "/", 3), strings.SplitN(l, "/", 3)
	switch {
	case pp[0] != lp[0]:
		return false
	case len(lp) == 1 || len(pp) == 1 || pp[1] == "*":
		return true
	case pp[1] != lp[1]:
		return false
	case len(lp) == 2 || len(pp) == 2:
		return true
	default:
		return pp[2] == "*" || pp[2] == lp[2]
	}
}

// isPrime is Envoy's (source/common/common/utility.cc, which Istio copies):
// 1 counts as prime.
func isPrime(n uint64) bool {
	if n != 0 && n < 4 {
		return true
	}
	if n&1 == 0 {
		return false
	}
	for d := uint64(3); d*d <= n; d += 2 {
		if n%d == 0 {
			return false
		}
	}
	return true
}

// validateClientTLS is Istio's agent.ValidateTLS.
func validateClientTLS(p *field.Path, t *networking.ClientTLSSettings, ns string, f *Findings) {
	if t == nil {
		return
	}
	if cn, ok := strings.CutPrefix(t.GetCredentialName(), "configmap://"); ok {
		if cmNS, _, found := strings.Cut(cn, "/"); found && cmNS != ns {
			f.Error(p.Child("credentialName"), t.GetCredentialName(), "configmap:// credentials must be in the DestinationRule's own namespace")
		}
	}
	skip := t.GetInsecureSkipVerify().GetValue()
	mode := t.GetMode()
	if skip {
		switch mode {
		case networking.ClientTLSSettings_SIMPLE:
			if t.GetCaCertificates() != "" || t.GetCredentialName() != "" || len(t.GetSubjectAltNames()) > 0 {
				f.Error(p.Child("insecureSkipVerify"), true, "cannot be true with SIMPLE mode together with caCertificates, credentialName or subjectAltNames")
			}
		case networking.ClientTLSSettings_MUTUAL:
			if t.GetCaCertificates() != "" || len(t.GetSubjectAltNames()) > 0 {
				f.Error(p.Child("insecureSkipVerify"), true, "cannot be true with MUTUAL mode together with caCertificates or subjectAltNames")
			}
		}
	}
	if (mode == networking.ClientTLSSettings_SIMPLE || mode == networking.ClientTLSSettings_MUTUAL) && t.GetCredentialName() != "" {
		for _, x := range []struct{ name, v string }{{"clientCertificate", t.GetClientCertificate()}, {"caCertificates", t.GetCaCertificates()}, {"privateKey", t.GetPrivateKey()}, {"caCrl", t.GetCaCrl()}} {
			if x.v != "" {
				f.Error(p.Child(x.name), field.OmitValueType{}, fmt.Sprintf("cannot set %s together with credentialName", x.name))
			}
		}
	}
	if mode == networking.ClientTLSSettings_MUTUAL && t.GetCredentialName() == "" {
		if t.GetClientCertificate() == "" {
			f.Required(p.Child("clientCertificate"), "client certificate required for mutual tls")
		}
		if t.GetPrivateKey() == "" {
			f.Required(p.Child("privateKey"), "private key required for mutual tls")
		}
	}
}
