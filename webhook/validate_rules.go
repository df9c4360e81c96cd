package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-logr/logr"
	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/manager"

	"github.com/meshguard/meshguard/internal/runnable"
	"github.com/meshguard/meshguard/orgrules"
	"github.com/meshguard/meshguard/reload"
)

// OrgRulesOptions name where the organisation rules (docs/governance.md) come
// from: a directory, and/or ConfigMaps in meshguard's namespace (one by name,
// or every one a label selector matches), each *.rego key a module.
type OrgRulesOptions struct {
	Dir               string
	ConfigMap         string
	ConfigMapSelector string
	// Namespace holds the ConfigMaps (meshguard's own).
	Namespace string
	// OnReload is called after every reload attempt with its error (nil on success).
	OnReload func(error)
}

// AddFlags registers the organisation-rule flags.
func (o *OrgRulesOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Dir, "rego-dir", "", "directory of organisation rules (Rego v1, package meshguard.validation) applied at admission and in the audit; hot-reloaded")
	fs.StringVar(&o.ConfigMap, "rego-configmap", "", "ConfigMap in meshguard's namespace whose *.rego keys are organisation rules; hot-reloaded")
	fs.StringVar(&o.ConfigMapSelector, "rego-configmap-selector", "", "label selector of ConfigMaps in meshguard's namespace whose *.rego keys are organisation rules (e.g. meshguard.io/rules=true); hot-reloaded")
}

func (o OrgRulesOptions) configured() bool {
	return o.Dir != "" || o.ConfigMap != "" || o.ConfigMapSelector != ""
}

// OrgRules is the current, prepared set of organisation rules: compiled once
// per change of its sources (never per request), and on a failed reload the
// last good set keeps serving.
type OrgRules struct {
	o        OrgRulesOptions
	selector labels.Selector
	log      logr.Logger
	cms      toolscache.Store // nil without a ConfigMap source

	rules   *reload.Store[orgRuleSet] // the last good set: one reload at a time, swapped atomically
	loaded  atomic.Bool               // a first load of every source succeeded
	trigger chan struct{}
}

// orgRuleSet is one loaded set of rules; nil rules: no module in any source.
type orgRuleSet struct{ rules *orgrules.Rules }

// Current returns the rules in force (nil: no rule module in any source).
func (r *OrgRules) Current() *orgrules.Rules {
	if r == nil {
		return nil
	}
	if set := r.rules.Load(); set != nil {
		return set.rules
	}
	return nil
}

// Ready fails until every source has been loaded successfully once: before
// that the webhook could admit what a rule denies.
func (r *OrgRules) Ready(*http.Request) error {
	if r.loaded.Load() {
		return nil
	}
	return errors.New("organisation rules not loaded yet")
}

// SetupOrgRules loads the organisation rules from their sources and keeps
// them reloaded while the manager runs (nil when no source is configured). A
// directory that does not load at startup is an error (meshguard does not
// start without the rules it was given).
func SetupOrgRules(mgr manager.Manager, o OrgRulesOptions, log logr.Logger) (*OrgRules, error) {
	if !o.configured() {
		return nil, nil
	}
	r, err := newOrgRules(o, log)
	if err != nil {
		return nil, err
	}
	if o.Dir != "" && o.ConfigMap == "" && o.ConfigMapSelector == "" {
		if err := r.reload(context.Background()); err != nil {
			return nil, err
		}
	}
	var synced func() bool
	if o.ConfigMap != "" || o.ConfigMapSelector != "" {
		cs, err := kubernetes.NewForConfig(mgr.GetConfig())
		if err != nil {
			return nil, fmt.Errorf("organisation rules: ConfigMap client: %w", err)
		}
		f := informers.NewSharedInformerFactoryWithOptions(cs, 0, informers.WithNamespace(o.Namespace),
			informers.WithTweakListOptions(func(lo *metav1.ListOptions) {
				switch {
				case o.ConfigMap == "":
					lo.LabelSelector = o.ConfigMapSelector
				case o.ConfigMapSelector == "":
					lo.FieldSelector = fields.OneTermEqualSelector("metadata.name", o.ConfigMap).String()
				}
			}))
		inf := f.Core().V1().ConfigMaps().Informer()
		if _, err := inf.AddEventHandler(r.configMapEvents()); err != nil {
			return nil, fmt.Errorf("organisation rules: watching ConfigMaps: %w", err)
		}
		r.cms = inf.GetStore()
		synced = inf.HasSynced
		if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
			f.Start(ctx.Done())
			<-ctx.Done()
			f.Shutdown()
			return nil
		})); err != nil {
			return nil, err
		}
	}
	if err := mgr.Add(runnable.EveryReplica(func(ctx context.Context) error {
		r.run(ctx, synced)
		return nil
	})); err != nil {
		return nil, err
	}
	return r, nil
}

func newOrgRules(o OrgRulesOptions, log logr.Logger) (*OrgRules, error) {
	r := &OrgRules{o: o, log: log, trigger: make(chan struct{}, 1),
		rules: reload.NewStore[orgRuleSet](nil, reload.Reporting{Source: reload.OrgRules, Log: log})}
	// An empty namespace would have the informer watch (and hold) the
	// ConfigMaps of every namespace, and take rules from any of them.
	if (o.ConfigMap != "" || o.ConfigMapSelector != "") && o.Namespace == "" {
		return nil, errors.New("organisation rules: --rego-configmap and --rego-configmap-selector read meshguard's own namespace, and --namespace is empty")
	}
	if o.ConfigMapSelector != "" {
		sel, err := labels.Parse(o.ConfigMapSelector)
		if err != nil {
			return nil, fmt.Errorf("--rego-configmap-selector %q: %w", o.ConfigMapSelector, err)
		}
		r.selector = sel
	}
	return r, nil
}

// run keeps the rules reloaded until ctx ends: once the ConfigMaps have
// synced (synced nil: no ConfigMap source), then after every burst of
// changes to the directory or the ConfigMaps.
func (r *OrgRules) run(ctx context.Context, synced func() bool) {
	if synced != nil {
		if !toolscache.WaitForCacheSync(ctx.Done(), synced) {
			return
		}
		r.reportReload(ctx)
	}
	if r.o.Dir != "" {
		go func() {
			if err := reload.Watch(ctx, r.log, r.trigger, nil, []string{r.o.Dir}); err != nil {
				r.log.Error(err, "watching the organisation rules directory; changes need a restart", "dir", r.o.Dir)
			}
		}()
	}
	reload.Debounce(ctx, r.trigger, 200*time.Millisecond, func() { r.reportReload(ctx) })
}

// configMapEvents pokes a reload on the events that change the rules: a
// selected ConfigMap added or deleted, its data changed, or one that starts
// or stops being selected. The informer also sees the namespace's other
// ConfigMaps when both a name and a selector are given (one list cannot ask
// for either), and updates that change no data (labels, annotations); they
// would each recompile every module.
func (r *OrgRules) configMapEvents() toolscache.ResourceEventHandlerFuncs {
	selected := func(obj any) (*corev1.ConfigMap, bool) {
		if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		cm, ok := obj.(*corev1.ConfigMap)
		return cm, ok && r.selects(cm)
	}
	pokeIf := func(obj any) {
		if _, ok := selected(obj); ok {
			r.poke()
		}
	}
	return toolscache.ResourceEventHandlerFuncs{
		AddFunc:    pokeIf,
		DeleteFunc: pokeIf,
		UpdateFunc: func(o, n any) {
			ocm, was := selected(o)
			ncm, is := selected(n)
			if was != is || is && (!maps.Equal(ocm.Data, ncm.Data) || !maps.EqualFunc(ocm.BinaryData, ncm.BinaryData, bytes.Equal)) {
				r.poke()
			}
		},
	}
}

func (r *OrgRules) poke() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

func (r *OrgRules) reportReload(ctx context.Context) {
	err := r.reload(ctx) // a rejection is logged and counted by the store
	if r.o.OnReload != nil {
		r.o.OnReload(err)
	}
}

// reload reads every source and compiles them together; on error the
// last good rules stay.
func (r *OrgRules) reload(ctx context.Context) error {
	set, err := r.rules.Update(func() (*orgRuleSet, error) {
		var mods []orgrules.Module
		if r.o.Dir != "" {
			dm, err := orgrules.ReadDir(r.o.Dir)
			if err != nil {
				return nil, err
			}
			mods = append(mods, dm...)
		}
		if r.cms != nil {
			cm, err := r.configMapModules()
			if err != nil {
				return nil, err
			}
			mods = append(mods, cm...)
		}
		if len(mods) == 0 { // no ConfigMap holds rules (any more): none apply
			return &orgRuleSet{}, nil
		}
		rules, err := orgrules.Compile(ctx, mods)
		if err != nil {
			return nil, err
		}
		return &orgRuleSet{rules: rules}, nil
	})
	if err != nil {
		return err
	}
	r.loaded.Store(true)
	if set.rules == nil {
		r.log.Info("no organisation rules")
	} else {
		r.log.Info("organisation rules loaded", "modules", set.rules.Files)
	}
	return nil
}

// configMapModules returns the module keys (orgrules.IsModule) of the selected
// ConfigMaps, named "ConfigMap ns/name key", in a stable order. A module key
// in binaryData (kubectl puts a file that is not UTF-8 there) is one too: as
// UTF-8 text it is read, otherwise it is an error naming it, never skipped.
func (r *OrgRules) configMapModules() ([]orgrules.Module, error) {
	var mods []orgrules.Module
	for _, item := range r.cms.List() {
		cm, ok := item.(*corev1.ConfigMap)
		if !ok || !r.selects(cm) {
			continue
		}
		name := func(key string) string { return fmt.Sprintf("ConfigMap %s/%s %s", cm.Namespace, cm.Name, key) }
		for key, src := range cm.Data {
			if orgrules.IsModule(key) {
				mods = append(mods, orgrules.Module{Name: name(key), Source: src})
			}
		}
		for key, src := range cm.BinaryData {
			if !orgrules.IsModule(key) {
				continue
			}
			if !utf8.Valid(src) {
				return nil, fmt.Errorf("%s: binaryData that is not UTF-8 text: a rule module must be UTF-8", name(key))
			}
			mods = append(mods, orgrules.Module{Name: name(key), Source: string(src)})
		}
	}
	slices.SortFunc(mods, func(a, b orgrules.Module) int { return strings.Compare(a.Name, b.Name) })
	return mods, nil
}

func (r *OrgRules) selects(cm *corev1.ConfigMap) bool {
	if r.o.ConfigMap != "" && cm.Name == r.o.ConfigMap {
		return true
	}
	return r.selector != nil && r.selector.Matches(labels.Set(cm.Labels))
}
