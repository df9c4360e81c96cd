package submap

import "testing"

func TestContains(t *testing.T) {
	labels := map[string]string{"app": "web", "version": "v1"}
	for _, tc := range []struct {
		sub  map[string]string
		want bool
	}{
		{nil, true},
		{map[string]string{}, true},
		{map[string]string{"app": "web"}, true},
		{map[string]string{"app": "web", "version": "v1"}, true},
		{map[string]string{"app": "api"}, false},
		{map[string]string{"app": "web", "tier": "front"}, false},
		{map[string]string{"version": ""}, false},
	} {
		if got := Contains(labels, tc.sub); got != tc.want {
			t.Errorf("Contains(%v, %v) = %v, want %v", labels, tc.sub, got, tc.want)
		}
	}
	if Contains(nil, map[string]string{"app": "web"}) {
		t.Error("a nil map holds a pair")
	}
	if !Contains(nil, nil) {
		t.Error("a nil map does not hold the empty map")
	}
}
