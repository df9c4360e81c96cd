package injector

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshguard/meshguard/injector/config"
)

func benchPod(envs int) *corev1.Pod {
	c := corev1.Container{Name: "app", Image: "example.com/app:1"}
	for i := 0; i < envs; i++ {
		c.Env = append(c.Env, corev1.EnvVar{Name: fmt.Sprintf("VAR_%d", i), Value: "v"})
	}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "app"}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
}

// BenchmarkInject measures Inject alone (typed pod in, patch ops out).
func BenchmarkInject(b *testing.B) {
	cfg := config.Default()
	for _, envs := range []int{0, 2000} {
		b.Run(fmt.Sprintf("env%d", envs), func(b *testing.B) {
			pod := benchPod(envs)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Inject(pod, "app", cfg, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
