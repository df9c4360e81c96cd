package validation

import (
	"strconv"

	security "istio.io/api/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/meshguard/meshguard/secpolicy"
)

// validatePeerAuthentication implements Istio's ValidatePeerAuthentication
// (pkg/config/validation/validation.go). An empty portLevelMtls map
// ({}) is indistinguishable from an absent one after decoding into the proto;
// the CRD schema (minProperties 1) rejects it.
func validatePeerAuthentication(_ metav1.ObjectMeta, pa *security.PeerAuthentication, f *Findings) {
	sp := field.NewPath("spec")
	validateWorkloadSelector(sp.Child("selector"), pa.GetSelector(), f)

	if len(pa.GetPortLevelMtls()) == 0 {
		return
	}
	pp := sp.Child("portLevelMtls")
	if len(pa.GetSelector().GetMatchLabels()) == 0 {
		f.Error(pp, nil, "portLevelMtls requires selector: mesh/namespace peer authentication cannot have port level mTLS")
	}
	ports := make(map[string]*security.PeerAuthentication_MutualTLS, len(pa.GetPortLevelMtls()))
	for port, m := range pa.GetPortLevelMtls() {
		ports[strconv.FormatUint(uint64(port), 10)] = m
	}
	for _, k := range sortedKeys(ports) {
		n, _ := strconv.ParseUint(k, 10, 32)
		kp := pp.Key(k)
		if err := secpolicy.CheckPortLevelPort(uint32(n)); err != nil {
			f.Error(kp, k, err.Error())
		}
		if ports[k] == nil {
			f.Required(kp, "port level mTLS setting must not be null")
		}
	}
}

// validatePeerAuthenticationRaw rejects a portLevelMtls key that is not a
// port number written canonically ("080", "0080"). The CRD's CEL rule
// (int(key)) and protojson read it as port 80, but the decoder Istio and
// client-go's typed informers use (golang/protobuf jsonpb, which Istio's
// pkg/util/protomarshal ApplyJSON wraps) refuses it, so istiod, and
// meshguard's own API-server cache, could not read the object: a stored
// PeerAuthentication list with it fails to decode as a whole.
func validatePeerAuthenticationRaw(_ metav1.ObjectMeta, spec map[string]any, f *Findings) {
	ports, _ := spec["portLevelMtls"].(map[string]any)
	pp := field.NewPath("spec", "portLevelMtls")
	for _, k := range sortedKeys(ports) {
		if n, err := strconv.ParseUint(k, 10, 32); err == nil && strconv.FormatUint(n, 10) != k {
			f.Error(pp.Key(k), k, "port must be written without leading zeros ("+strconv.FormatUint(n, 10)+")")
		}
	}
}
