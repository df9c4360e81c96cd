package meshconfig

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// FuzzParse parses arbitrary mesh config YAML as LoadFile does (Parse, then
// Validate) and, for any config Parse accepts, parses the config it produced
// (protojson, every field written) again: it must not panic, and the result
// must be the same config, so nothing Parse accepts changes meaning when
// written back out. Validate must not panic on anything Parse accepts.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"# only a comment\n",
		"trustDomain: x.td\ntrustDomainAliases: [b, a, b]\nrootNamespace: root\n",
		"defaultConfig:\n  tracingServiceName: CANONICAL_NAME_ONLY\n  statusPort: null\n  drainDuration: 1m\n  proxyMetadata: {A: b}\n",
		"extensionProviders:\n- {name: envoy, envoyFileAccessLog: {path: /dev/stderr}}\n- {name: authz, envoyExtAuthzGrpc: {service: a.b.svc.cluster.local, port: 9191}}\n",
		"default_config: {}\n",
		"connectTimeout: 1h2m3.5s\npathNormalization: {normalization: MERGE_SLASHES}\n",
		"enableAutoMtls: false\nproxyInboundListenPort: 0\nlocalityLbSetting: {}\n",
		"defaultConfig: {concurrency: 2, serviceCluster: x, tracingServiceName: APP_LABEL_AND_NAMESPACE}\n",
		"[1, 2]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if len(in) > 1<<14 {
			return
		}
		// A hang is a crash the fuzzer keeps (its input saved).
		defer time.AfterFunc(5*time.Second, func() { panic(fmt.Sprintf("Parse did not finish within 5s: %q", in)) }).Stop()
		m, err := Parse([]byte(in))
		if err != nil {
			if !strings.HasPrefix(err.Error(), "mesh config: ") {
				t.Fatalf("error does not name the mesh config: %v", err)
			}
			return
		}
		_ = Validate(m)
		out, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(m)
		if err != nil {
			t.Fatalf("marshalling the parsed config: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("parsing the parsed config %s: %v", out, err)
		}
		if !proto.Equal(m, again) {
			t.Fatalf("the parsed config means something else when parsed again:\nfirst:  %v\nsecond: %v", m, again)
		}
	})
}
