package analysis

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"istio.io/api/annotation"
	"istio.io/api/label"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1beta1 "istio.io/api/networking/v1beta1"
	corev1 "k8s.io/api/core/v1"

	injectorconfig "github.com/meshguard/meshguard/injector/config"

	"github.com/meshguard/meshguard/internal/submap"
)

// PodsProxyImageMismatchInNamespace is Istio's IST0158
// PodsIstioProxyImageMismatchInNamespace (Warning), the message of
// injection.ImageAnalyzer (pkg/config/analysis/analyzers/injection/
// injection-image.go, which at 0a617ca985f9 replaced the per-pod IST0105
// IstioProxyImageMismatch of older versions such as 47dc19eebc51); text from
// pkg/config/analysis/msg/messages.gen.go at 02262c5b808d.
const PodsProxyImageMismatchInNamespace = "IST0158"

// NamespaceInjectionEnabledByDefault is Istio's IST0148 (Info), reported by
// its injection.Analyzer (injection.go).
const NamespaceInjectionEnabledByDefault = "IST0148"

func init() {
	Types[PodsProxyImageMismatchInNamespace] = MessageType{PodsProxyImageMismatchInNamespace, "PodsIstioProxyImageMismatchInNamespace", Warning}
	Types[NamespaceInjectionEnabledByDefault] = MessageType{NamespaceInjectionEnabledByDefault, "NamespaceInjectionEnabledByDefault", Info}
}

// injectorConfigMapPrefix names the injector ConfigMaps Istio's analyzers
// read (injection-image.go ImageAnalyzer.Analyze: strings.HasPrefix).
const injectorConfigMapPrefix = "istio-sidecar-injector"

// injectorConfigMapName is the injector ConfigMap of revision rev (Istio's
// pkg/config/analysis/analyzers/util/config.go GetInjectorConfigMapName):
// istio-sidecar-injector for "" and "default", else
// istio-sidecar-injector-<rev>.
func injectorConfigMapName(rev string) string {
	if rev == "" || rev == "default" {
		return injectorConfigMapPrefix
	}
	return injectorConfigMapPrefix + "-" + rev
}

// addInjectorConfigMap records the injector values of an
// istio-sidecar-injector* ConfigMap, parsed and validated by the injector's
// own loader (injector/config LoadValues, defaults included). Fail closed:
// a ConfigMap without a "values" key, or whose values the injector refuses,
// is an error naming the ConfigMap and the field (Istio's analyzers take
// such values as empty: every proxy image then mismatches and
// enableNamespacesByDefault is false).
func (in *Input) addInjectorConfigMap(cm *corev1.ConfigMap, namespace string) error {
	raw, ok := cm.Data["values"]
	if !ok {
		return fmt.Errorf("ConfigMap %s/%s: data.values: missing (the injector values)", namespace, cm.Name)
	}
	v, err := injectorconfig.LoadValues([]byte(raw))
	if err != nil {
		return fmt.Errorf("ConfigMap %s/%s: data.values: %w", namespace, cm.Name, err)
	}
	if in.InjectorValues == nil {
		in.InjectorValues = map[string]*injectorconfig.Values{}
	}
	in.InjectorValues[cm.Name] = &v
	return nil
}

// proxyImageMismatches is Istio's injection.ImageAnalyzer
// (ImageAnalyzer.Analyze of the newest stored injection-image.go, which
// also reads init containers and the image type, resolver.ImageType; the
// index names no commit for it, and the version at 0a617ca985f9 reads
// containers only, without image types): without an
// injector ConfigMap nothing is reported. A Namespace labelled
// istio-injection=enabled or carrying an istio.io/rev label (of any value;
// the revision "default" without it) is injected by the ConfigMap of that
// revision (injectorConfigMapName). In such a namespace, each Pod without a
// sidecar.istio.io/proxyImage annotation whose containers or init
// containers (native sidecars) include one named istio-proxy whose image is
// neither the injector's image nor that image followed by "-<image type>"
// (imageType) is mismatched, when the revision's ConfigMap is known. Each
// namespace with mismatched pods gets one IST0158 listing them (in input
// order, a pod once per mismatched container as Istio appends it).
//
// The injector's image is computed by the injector's own code
// (injector/config GlobalValues.ImageURL of global.proxy.image without an
// image type: <hub>/<image>:<tag>, or global.proxy.image itself when it
// contains "/"), as Istio's GetIstioProxyImage computes it; the image type
// is appended as Istio appends it. As in Istio's analyzer, istio-system and
// the namespaces the injector ignores are judged too when labelled.
func proxyImageMismatches(in *Input) []Message {
	if len(in.InjectorValues) == 0 {
		return nil
	}
	revisions := imageRevisions(in)
	pcs := newProxyConfigs(in)
	mismatched := map[string][]string{}
	for _, w := range in.Workloads {
		rev, ok := revisions[w.Namespace]
		if w.Kind != "Pod" || !ok || w.Annotations[annotation.SidecarProxyImage.Name] != "" {
			continue
		}
		variant := pcs.imageType(w)
		for _, c := range append(slices.Clone(w.Containers), w.InitContainers...) {
			if c.Name != istioProxyContainer {
				continue
			}
			v, ok := in.InjectorValues[injectorConfigMapName(rev)]
			if !ok {
				break
			}
			want := v.Global.ImageURL(v.Global.Proxy.Image, "")
			if c.Image != want && c.Image != want+"-"+variant {
				mismatched[w.Namespace] = append(mismatched[w.Namespace], w.Name)
			}
		}
	}
	var out []Message
	for _, ns := range slices.Sorted(maps.Keys(mismatched)) {
		out = append(out, newMessage(Object{Kind: "Namespace", Name: ns}, PodsProxyImageMismatchInNamespace, "metadata.name",
			fmt.Sprintf("The Istio proxy images of the pods running in the namespace do not match the image defined in the injection configuration (pod names: %v). This often happens after upgrading the Istio control-plane and can be fixed by redeploying the pods.", mismatched[ns])))
	}
	return out
}

// proxyConfigs are the ProxyConfig resources of the input as Istio's
// util.EffectiveProxyConfigResolver (pkg/config/analysis/analyzers/util/
// proxyconfig.go at 5a6f078f7f09) keys them: the last one of the root
// namespace, the last one without selector per namespace, those with a
// selector by namespace/name.
type proxyConfigs struct {
	mesh      *meshv1alpha1.MeshConfig
	root      *networkingv1beta1.ProxyConfig
	namespace map[string]*networkingv1beta1.ProxyConfig
	workload  map[string]*networkingv1beta1.ProxyConfig
}

func newProxyConfigs(in *Input) *proxyConfigs {
	p := &proxyConfigs{mesh: in.mesh(), namespace: map[string]*networkingv1beta1.ProxyConfig{},
		workload: map[string]*networkingv1beta1.ProxyConfig{}}
	root := in.RootNamespace()
	for _, o := range in.Objects {
		pc, ok := o.Spec.(*networkingv1beta1.ProxyConfig)
		if !ok {
			continue
		}
		switch {
		case o.Namespace == root:
			p.root = pc
		case pc.GetSelector() == nil:
			p.namespace[o.Namespace] = pc
		default:
			p.workload[o.Namespace+"/"+o.Name] = pc
		}
	}
	return p
}

// imageType is Istio's EffectiveProxyConfigResolver.ImageType for pod w:
// the mesh config's defaultConfig.image.imageType, overridden (when
// non-empty) by the root namespace's ProxyConfig, the namespace's, a
// workload ProxyConfig of the namespace whose selector's matchLabels contain
// every label of the pod (Istio's maps.Contains(selector, pod labels), in
// that direction), then the pod's proxy.istio.io/config annotation when it
// parses; "default" is "".
func (p *proxyConfigs) imageType(w Workload) string {
	variant := p.mesh.GetDefaultConfig().GetImage().GetImageType()
	if t := p.root.GetImage().GetImageType(); t != "" {
		variant = t
	}
	if t := p.namespace[w.Namespace].GetImage().GetImageType(); t != "" {
		variant = t
	}
	for _, k := range slices.Sorted(maps.Keys(p.workload)) {
		pc := p.workload[k]
		// Istio: strings.HasPrefix(key, namespace), the key "namespace/name".
		if !strings.HasPrefix(k, w.Namespace) || !submap.Contains(pc.GetSelector().GetMatchLabels(), w.Labels) {
			continue
		}
		if t := pc.GetImage().GetImageType(); t != "" {
			variant = t
		}
	}
	if a, ok := w.Annotations[annotation.ProxyConfig.Name]; ok {
		if pc, err := injectorconfig.ParseProxyConfig(&meshv1alpha1.ProxyConfig{}, a); err == nil {
			if t := pc.GetImage().GetImageType(); t != "" {
				variant = t
			}
		}
	}
	if variant == "default" {
		return ""
	}
	return variant
}

// imageRevisions maps each namespace whose pods the image analyzer judges to
// the revision whose injector ConfigMap it reads: an istio.io/rev label's
// value, else "default" for istio-injection=enabled (Istio's ImageAnalyzer
// takes istio-system and the ignored namespaces too).
func imageRevisions(in *Input) map[string]string {
	revisions := map[string]string{}
	for ns, l := range in.Namespaces {
		if rev, ok := l[label.IoIstioRev.Name]; ok {
			revisions[ns] = rev
		} else if l[injectionLabel] == "enabled" {
			revisions[ns] = "default"
		}
	}
	return revisions
}
