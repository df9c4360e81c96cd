package analysis

import (
	"fmt"

	networking "istio.io/api/networking/v1alpha3"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Codes of the DestinationRule TLS analyzer (Istio's
// pkg/config/analysis/analyzers/destinationrule/ca-certificates.go
// CaCertificateAnalyzer.analyzeDestinationRule).
const (
	NoServerCertificateVerificationDestinationLevel = "IST0128"
	NoServerCertificateVerificationPortLevel        = "IST0129"
)

func init() {
	Types[NoServerCertificateVerificationDestinationLevel] = MessageType{NoServerCertificateVerificationDestinationLevel, "NoServerCertificateVerificationDestinationLevel", Warning}
	Types[NoServerCertificateVerificationPortLevel] = MessageType{NoServerCertificateVerificationPortLevel, "NoServerCertificateVerificationPortLevel", Warning}
}

// noServerCertVerification reports SIMPLE or MUTUAL client TLS without
// caCertificates (unless a credentialName is used with a workloadSelector),
// at destination and port level, with Istio's message text.
func noServerCertVerification(o Object, dr *networking.DestinationRule) []Message {
	unverified := func(tls *networking.ClientTLSSettings) bool {
		mode := tls.GetMode()
		return (mode == networking.ClientTLSSettings_SIMPLE || mode == networking.ClientTLSSettings_MUTUAL) &&
			tls.GetCaCertificates() == "" && !(tls.GetCredentialName() != "" && dr.GetWorkloadSelector() != nil)
	}
	name := o.Namespace + "/" + o.Name
	msg := func(code, fieldPath, text string) Message { return newMessage(o, code, fieldPath, text) }
	var out []Message
	tp := field.NewPath("spec", "trafficPolicy")
	if tls := dr.GetTrafficPolicy().GetTls(); unverified(tls) {
		out = append(out, msg(NoServerCertificateVerificationDestinationLevel, tp.Child("tls").String(),
			fmt.Sprintf("DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s",
				name, o.Namespace, tls.GetMode(), dr.GetHost())))
	}
	for i, p := range dr.GetTrafficPolicy().GetPortLevelSettings() {
		if tls := p.GetTls(); unverified(tls) {
			out = append(out, msg(NoServerCertificateVerificationPortLevel, tp.Child("portLevelSettings").Index(i).Child("tls").String(),
				fmt.Sprintf("DestinationRule %s in namespace %s has TLS mode set to %s but no caCertificates are set to validate server identity for host: %s at port %s",
					name, o.Namespace, tls.GetMode(), dr.GetHost(), p.GetPort().String())))
		}
	}
	return out
}
