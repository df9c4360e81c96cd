package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
)

// The CPU profile step answers "where does the time of a request go" for the
// gRPC rows: perf (cpu-clock samples with call graphs, kernel included)
// records the no-op and the meshguard servers (10, 1,000, 10,000 policies)
// during one more measured ghz run each, and every sample is attributed to
// the first category its stack matches (cpuCategories, in order). Times are
// µs per request under sampling, so they run a little above the unprofiled
// rounds; the shares are what the profile is for.

// cpuCategory: a sample belongs to the first category one of whose
// frames has a prefix in frames.
type cpuCategory struct {
	name   string
	frames []string
}

var cpuCategories = []cpuCategory{
	{"GC: background marking, sweeping, assists", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.gcAssistAlloc", "runtime.gcStart", "runtime.gcMarkDone", "runtime.gcMarkTermination"}},
	{"goroutine stack growth (runtime.newstack)", []string{"runtime.newstack", "runtime.morestack"}},
	{opaCategory, []string{"github.com/open-policy-agent/opa/v1/topdown.(*Query).Iter"}},
	{"meshguard Check around it: decode, input, result (policy.*)", []string{"github.com/meshguard/meshguard/policy."}},
	{"meshguard handler: hand-off, log sampling, response (authz.*)", []string{"github.com/meshguard/meshguard/authz."}},
	{"request decode: protobuf Unmarshal", []string{"google.golang.org/grpc/encoding/proto.(*codecV2).Unmarshal"}},
	{"response encode: protobuf Marshal", []string{"google.golang.org/grpc/encoding/proto.(*codecV2).Marshal"}},
	{"gRPC/HTTP2 transport, with its syscalls", []string{"google.golang.org/grpc.", "google.golang.org/grpc/", "golang.org/x/net/http2"}},
	{"Go scheduler: idle, spinning, wake-ups", []string{"runtime.schedule", "runtime.findRunnable", "runtime.mcall", "runtime.park_m", "runtime.mstart", "runtime.sysmon"}},
}

const otherCategory = "other"

// opaCategory is OPA's evaluation, whose share of the base server's request
// the report states.
const opaCategory = "OPA evaluation: topdown.(*Query).Iter"

// cpuProfile is one server's profiled run.
type cpuProfile struct {
	server    string
	conc      int
	cpuPerReq float64        // µs, from /proc during the profiled run
	samples   int            // perf samples
	byCat     map[string]int // samples per category name
}

// us is the µs per request a category took: its share of the samples times
// the CPU per request.
func (p cpuProfile) us(cat string) float64 {
	if p.samples == 0 {
		return 0
	}
	return float64(p.byCat[cat]) / float64(p.samples) * p.cpuPerReq
}

// profileServers profiles the no-op and the 10-, 1,000- and 10,000-policy
// servers at each concurrency, unless perf is off or missing. The note says
// why there is no profile; a profile that fails (perf not permitted, say)
// leaves the rest of the run's report intact.
func profileServers(ctx context.Context, c config, servers []*server, protoset, reqJSON string) ([]cpuProfile, string) {
	perf := c.perf
	switch perf {
	case "off", "":
		return nil, ""
	case "auto":
		p, err := exec.LookPath("perf")
		if err != nil {
			return nil, "CPU profile step skipped: no perf on PATH (Debian: apt-get install linux-perf)."
		}
		perf = p
	}
	var out []cpuProfile
	for _, conc := range c.concurrency {
		for _, s := range servers {
			switch s.policies {
			case -1, 10, 1000, 10000:
			default:
				continue
			}
			p, err := profileCPU(ctx, c, perf, s, conc, protoset, reqJSON)
			if err != nil {
				return nil, "CPU profile step failed: " + err.Error()
			}
			out = append(out, p)
		}
	}
	return out, ""
}

// profileCPU runs one measured ghz run against s with perf recording it.
func profileCPU(ctx context.Context, c config, perf string, s *server, conc int, protoset, reqJSON string) (cpuProfile, error) {
	data := filepath.Join(c.work, fmt.Sprintf("perf-%s-c%d.data", s.name, conc))
	_ = os.Remove(data)
	var perfOut bytes.Buffer
	rec := exec.CommandContext(ctx, perf, "record", "-e", "cpu-clock", "-F", "999", "-g", "-p", fmt.Sprint(s.cmd.Process.Pid), "-o", data)
	rec.Stdout, rec.Stderr = &perfOut, &perfOut
	if err := rec.Start(); err != nil {
		return cpuProfile{}, fmt.Errorf("perf record: %w", err)
	}
	done := make(chan error, 1)
	go func() { done <- rec.Wait() }()
	// perf writes its header once it has attached to the process.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if st, err := os.Stat(data); err == nil && st.Size() > 0 {
			break
		}
		select {
		case err := <-done:
			return cpuProfile{}, fmt.Errorf("perf record ended before attaching to %s: %v: %s", s.name, err, perfOut.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = rec.Process.Kill()
			<-done
			return cpuProfile{}, fmt.Errorf("perf record did not attach to %s within 30s: %s", s.name, perfOut.String())
		}
	}
	sm, err := measure(c, s, conc, protoset, reqJSON)
	_ = rec.Process.Signal(syscall.SIGINT)
	if werr := <-done; err == nil && werr != nil && !strings.Contains(werr.Error(), "interrupt") {
		err = fmt.Errorf("perf record: %v: %s", werr, perfOut.String())
	}
	if err != nil {
		return cpuProfile{}, err
	}
	script := exec.CommandContext(ctx, perf, "script", "-i", data, "-F", "ip,sym")
	out, err := script.StdoutPipe()
	if err != nil {
		return cpuProfile{}, err
	}
	var stderr bytes.Buffer
	script.Stderr = &stderr
	if err := script.Start(); err != nil {
		return cpuProfile{}, fmt.Errorf("perf script: %w", err)
	}
	p := cpuProfile{server: s.name, conc: conc, cpuPerReq: sm.cpuPerReq, byCat: map[string]int{}}
	perr := classify(out, &p)
	if err := script.Wait(); err != nil {
		return cpuProfile{}, fmt.Errorf("perf script: %v: %s", err, stderr.String())
	}
	if perr != nil {
		return cpuProfile{}, perr
	}
	if p.samples == 0 {
		return cpuProfile{}, fmt.Errorf("perf recorded no samples of %s", s.name)
	}
	return p, nil
}

// classify reads `perf script -F ip,sym` (one frame per line, leaf first, a
// blank line after each sample) into p.
func classify(r io.Reader, p *cpuProfile) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var frames []string
	flush := func() {
		if len(frames) > 0 {
			p.samples++
			p.byCat[categoryOf(frames)]++
		}
		frames = frames[:0]
	}
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			flush()
			continue
		}
		if len(f) >= 2 {
			frames = append(frames, f[1])
		}
	}
	flush()
	return sc.Err()
}

func categoryOf(frames []string) string {
	for _, c := range cpuCategories {
		for _, fr := range frames {
			for _, pre := range c.frames {
				if strings.HasPrefix(fr, pre) {
					return c.name
				}
			}
		}
	}
	return otherCategory
}

// profilePair is two profiled servers the report compares.
type profilePair struct{ base, other, why string }

var profilePairs = []profilePair{
	{"noop", "meshguard-1000", "the 1.2x target leaves 20% of the no-op's request"},
	{"meshguard-10", "meshguard-10000", "the 1.15x target leaves 15% of the 10-policy server's request"},
}

// reportProfile prints, per pair and concurrency, each category's µs per
// request for both servers, the difference, and the OPA evaluation's share
// of the base server's request.
func reportProfile(w io.Writer, profiles []cpuProfile) {
	if len(profiles) == 0 {
		return
	}
	fmt.Fprintf(w, "\n## Where the CPU of a request goes (perf cpu-clock samples with call graphs, one more measured run each; µs per request under sampling)\n")
	names := []string{}
	for _, c := range cpuCategories {
		names = append(names, c.name)
	}
	names = append(names, otherCategory)
	type key struct {
		server string
		conc   int
	}
	byKey := map[key]cpuProfile{}
	var concs []int
	for _, p := range profiles {
		if _, seen := byKey[key{"noop", p.conc}]; !seen && p.server == "noop" {
			concs = append(concs, p.conc)
		}
		byKey[key{p.server, p.conc}] = p
	}
	for _, pair := range profilePairs {
		for _, conc := range concs {
			b, okB := byKey[key{pair.base, conc}]
			o, okO := byKey[key{pair.other, conc}]
			if !okB || !okO {
				continue
			}
			fmt.Fprintf(w, "\n%s vs %s, concurrency %d: %.1f µs/request (%d samples) vs %.1f µs/request (%d samples)\n\n",
				pair.other, pair.base, conc, o.cpuPerReq, o.samples, b.cpuPerReq, b.samples)
			fmt.Fprintf(w, "%-66s %-16s %-16s %-9s %s\n", "category (first match from the top, by stack)", pair.base, pair.other, "added", "share of "+pair.other)
			for _, cat := range names {
				fmt.Fprintf(w, "%-66s %-16.1f %-16.1f %-9.1f %.1f%%\n", cat, b.us(cat), o.us(cat), o.us(cat)-b.us(cat), 100*float64(o.byCat[cat])/float64(o.samples))
			}
			largest := slices.Clone(names)
			sort.SliceStable(largest, func(i, j int) bool { return o.us(largest[i])-b.us(largest[i]) > o.us(largest[j])-b.us(largest[j]) })
			iter := o.us(opaCategory)
			fmt.Fprintf(w, "%s / %s under sampling %.2fx (%s); most added: %s +%.1f µs, %s +%.1f µs; OPA evaluation in %s is %.0f%% of %s's whole request\n",
				pair.other, pair.base, o.cpuPerReq/b.cpuPerReq, pair.why, largest[0], o.us(largest[0])-b.us(largest[0]),
				largest[1], o.us(largest[1])-b.us(largest[1]), pair.other, 100*iter/b.cpuPerReq, pair.base)
		}
	}
}
