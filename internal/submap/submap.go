// Package submap answers whether one string map holds another: the label
// selector match of Istio's WorkloadSelector (labels.Instance.SubsetOf) and
// Istio's pkg/maps Contains, written once for the ext_authz request path,
// the injector's ProxyConfig selection and the analyzers.
package submap

// Contains reports whether superset has every key of subset with the same
// value (an empty subset is in every map).
func Contains(superset, subset map[string]string) bool {
	for k, v := range subset {
		if sv, ok := superset[k]; !ok || sv != v {
			return false
		}
	}
	return true
}
