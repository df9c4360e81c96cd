package template

import (
	"crypto/sha256"
	"encoding/hex"
)

// StockVersion names an Istio release line whose stock injection templates
// meshguard recognises.
type StockVersion string

// Istio versions with recognised stock templates.
const (
	// Istio86c9f01 is Istio at commit 86c9f01fd735 (master, 2026-08-22),
	// whose `istioctl manifest generate` default install the
	// conformance data was taken from.
	Istio86c9f01 StockVersion = "istio@86c9f01fd735"
)

// stockTemplates holds the SHA-256 of the text of each template in the
// `config` key of ConfigMap istio-sidecar-injector of a default install, per
// Istio version. A template whose text hashes to its stock value is Istio's
// own, byte for byte.
var stockTemplates = map[StockVersion]map[string]string{
	Istio86c9f01: {
		"agentgateway":          "14b132edb9432d5d0e7a15469e99623d97fa651527312e628579c5f24dc7b5b6",
		"agentgateway-waypoint": "fff0c64dba0f5dac93ddf4ebc0d4c21d963e0b741631a9dc15cad572859b3725",
		"gateway":               "266a2162fe6795521563915d655d55957a12c7d6ffaed22e74dbab2c43666b04",
		"grpc-agent":            "79e57936d94e4194011cccc22f2adc39a8b20032ead5e7ad2cc1a0e79ef84c84",
		"grpc-simple":           "cc0c60252f24558ef15b6c2ba77350f3c84a52b16f0009fcee440e98ca94c2da",
		"kube-gateway":          "25ab106e6a5ddbd4702a011252069f29ed42e1e487c08496308473980adbb389",
		"sidecar":               "9d7bd5fc214ff1004b115158be8992b92618e8017d993244aac8329cf10fff27",
		"waypoint":              "9993b07c0b42fa1f773088bea3f13fae52317b3baa5ae9cd33e36d64257d78dc",
	},
}

// StockOf reports which Istio version's stock template called name has
// exactly the given text; ok is false for any other text (a customised or a
// user's own template).
func StockOf(name, text string) (v StockVersion, ok bool) {
	sum := sha256.Sum256([]byte(text))
	h := hex.EncodeToString(sum[:])
	for v, byName := range stockTemplates {
		if byName[name] == h {
			return v, true
		}
	}
	return "", false
}
