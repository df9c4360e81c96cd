// Command compare runs the side-by-side benchmarks and prints the ratio
// table (hack/bench-compare.sh builds its inputs; docs/benchmarks.md explains
// the figures). Everything is interleaved: each round runs every server and
// benchmark once, in alternating order, and each ratio is computed within a
// round, so a change in the machine's speed moves both sides of a ratio.
//
//   - ext_authz over gRPC: `meshguard authz serve` at each policy count and
//     the no-op server (test/bench/noop, same gRPC options), driven by ghz
//     over loopback; server CPU per request from /proc/<pid>/stat
//     (utime+stime) over the measured run, p99 and throughput from ghz.
//   - in-process: test/bench/opabaseline's BenchmarkSideBySide (meshguard's
//     Check vs the OPA "policies as data" baseline at 1,000 policies).
//   - /inject: webhook's BenchmarkInjectHandler vs BenchmarkInjectFloor.
//   - memory: RSS (VmRSS, peak VmHWM) and live heap (GODEBUG=gctrace=1) of
//     each meshguard server, and swaps of a 10,000-policy snapshot under
//     load: time from the file write to the first answer from the new
//     snapshot, and the p99 and slowest request during the swap against
//     the same in an equally long window just before the write.
//
// It is test tooling: nothing under cmd/meshguard imports it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"sigs.k8s.io/yaml"

	"github.com/meshguard/meshguard/test/bench"
)

type config struct {
	meshguard, noop, ghz, sideBySide, webhookTest, webhookDir, work string
	rounds, requests, warmup, swaps, clkTck                         int
	concurrency, policies                                           []int
	inprocTime, injectTime                                          string
	skipInject, skipInproc                                          bool
	perf                                                            string // "" or "off": no CPU profile step
}

func main() {
	var c config
	var conc, pols string
	flag.StringVar(&c.meshguard, "meshguard", "", "meshguard binary")
	flag.StringVar(&c.noop, "noop", "", "no-op ext_authz server binary (test/bench/noop)")
	flag.StringVar(&c.ghz, "ghz", "bin/ghz", "ghz binary")
	flag.StringVar(&c.sideBySide, "sidebyside-test", "", "test binary of test/bench/opabaseline")
	flag.StringVar(&c.webhookTest, "webhook-test", "", "test binary of webhook")
	flag.StringVar(&c.webhookDir, "webhook-dir", "webhook", "working directory for the webhook test binary")
	flag.StringVar(&c.work, "work", "", "scratch directory (policy dirs, server logs)")
	flag.IntVar(&c.rounds, "rounds", 5, "interleaved rounds")
	flag.IntVar(&c.requests, "requests", 20000, "measured ghz requests per server, concurrency and round")
	flag.IntVar(&c.warmup, "warmup", 2000, "unmeasured ghz requests before each measured run")
	flag.IntVar(&c.swaps, "swaps", 3, "snapshot swaps of the largest policy count under load")
	flag.IntVar(&c.clkTck, "clk-tck", 100, "clock ticks per second of /proc/<pid>/stat (getconf CLK_TCK)")
	flag.StringVar(&conc, "concurrency", "2,16", "ghz concurrency levels")
	flag.StringVar(&pols, "policies", "10,1000,10000", "policy counts of the meshguard servers (must include 10, 1000, 10000 for the ratio table)")
	flag.StringVar(&c.inprocTime, "inproc-benchtime", "1s", "-test.benchtime of each in-process benchmark run")
	flag.StringVar(&c.injectTime, "inject-benchtime", "1s", "-test.benchtime of each /inject benchmark run")
	flag.BoolVar(&c.skipInject, "skip-inject", false, "leave out the /inject rows")
	flag.BoolVar(&c.skipInproc, "skip-inproc", false, "leave out the in-process rows")
	flag.StringVar(&c.perf, "perf", "auto", "perf binary for the CPU profile step (auto: perf on PATH, if any; off: no profile)")
	writeOnly := flag.String("write-policies", "", "only write the first -policies count's policy YAML into this directory, request.json and authz.protoset beside it (for profiling a server by hand) and exit")
	flag.Parse()
	var err error
	if c.concurrency, err = ints(conc); err == nil {
		c.policies, err = ints(pols)
	}
	switch {
	case err == nil && *writeOnly != "":
		err = writeInputs(*writeOnly, c.policies[0])
	case err == nil:
		err = run(c)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench-compare:", err)
		os.Exit(1)
	}
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("%q: %w", s, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// server is one process under load.
type server struct {
	name     string
	policies int // -1: the no-op server
	addr     string
	cmd      *exec.Cmd
	logPath  string
	started  time.Time     // when the process was started (gctrace times are since then)
	dir      string        // policy dir (meshguard)
	exited   chan struct{} // closed when the process has exited
}

// sample is one measured ghz run.
type sample struct {
	round, conc       int
	server            string
	cpuPerReq         float64 // µs
	p50, p99, slowest float64 // ms
	rps               float64
	gcs               int
	ok, requests      int
}

// benchResult is one `go test -bench` line.
type benchResult struct {
	round  int
	name   string
	nsOp   float64
	allocs float64
}

func run(c config) error {
	for _, p := range []string{c.meshguard, c.noop, c.ghz} {
		if _, err := os.Stat(p); err != nil {
			return fmt.Errorf("missing binary: %w", err)
		}
	}
	if c.work == "" {
		d, err := os.MkdirTemp("", "bench-compare-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		c.work = d
	}
	start := time.Now().UTC()
	fmt.Printf("# bench-compare %s\n", start.Format(time.RFC3339))
	fmt.Printf("machine: %s, %d CPUs (GOMAXPROCS of the servers), %s\n", cpuModel(), runtime.NumCPU(), runtime.Version())
	fmt.Printf("settings: rounds=%d requests=%d warmup=%d concurrency=%v policies=%v swaps=%d inproc-benchtime=%s inject-benchtime=%s\n",
		c.rounds, c.requests, c.warmup, c.concurrency, c.policies, c.swaps, c.inprocTime, c.injectTime)
	fmt.Printf("load average at start: %s\n\n", loadavg())

	protoset := filepath.Join(c.work, "authz.protoset")
	if err := writeProtoset(protoset); err != nil {
		return err
	}
	reqJSON := filepath.Join(c.work, "request.json")
	rb, err := protojson.Marshal(bench.LoadRequest())
	if err != nil {
		return err
	}
	if err := os.WriteFile(reqJSON, rb, 0o644); err != nil {
		return err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	servers := []*server{{name: "noop", policies: -1, addr: "127.0.0.1:19100"}}
	for i, n := range c.policies {
		servers = append(servers, &server{name: fmt.Sprintf("meshguard-%d", n), policies: n, addr: fmt.Sprintf("127.0.0.1:%d", 19101+i)})
	}
	defer func() {
		for _, s := range servers {
			if s.cmd != nil && s.cmd.Process != nil {
				_ = s.cmd.Process.Signal(syscall.SIGTERM)
				<-s.exited
			}
		}
	}()
	for _, s := range servers {
		if err := s.start(ctx, c); err != nil {
			return err
		}
	}
	for _, s := range servers {
		t0 := time.Now()
		if err := s.awaitReady(ctx, 10*time.Minute); err != nil {
			return err
		}
		fmt.Printf("%s ready in %.1fs\n", s.name, time.Since(t0).Seconds())
	}
	fmt.Println()

	var samples []sample
	var inproc, inject []benchResult
	var loads []string
	for r := 0; r < c.rounds; r++ {
		order := append([]*server{}, servers...)
		if r%2 == 1 {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, conc := range c.concurrency {
			for _, s := range order {
				sm, err := measure(c, s, conc, protoset, reqJSON)
				if err != nil {
					return err
				}
				sm.round = r + 1
				samples = append(samples, sm)
			}
		}
		if !c.skipInproc && c.sideBySide != "" {
			names := []string{"impl=meshguard/policies=1000", "impl=opa-data/policies=1000"}
			if r%2 == 1 {
				names[0], names[1] = names[1], names[0]
			}
			for _, n := range names {
				res, err := goBench(c.sideBySide, "", "BenchmarkSideBySide/"+n+"$", c.inprocTime)
				if err != nil {
					return err
				}
				for i := range res {
					res[i].round = r + 1
				}
				inproc = append(inproc, res...)
			}
		}
		if !c.skipInject && c.webhookTest != "" {
			names := []string{"BenchmarkInjectHandler/(tiny|env2000)$", "BenchmarkInjectFloor/(tiny|env2000)$"}
			if r%2 == 1 {
				names[0], names[1] = names[1], names[0]
			}
			for _, n := range names {
				res, err := goBench(c.webhookTest, c.webhookDir, n, c.injectTime)
				if err != nil {
					return err
				}
				for i := range res {
					res[i].round = r + 1
				}
				inject = append(inject, res...)
			}
		}
		loads = append(loads, loadavg())
		fmt.Printf("round %d done, load average %s\n", r+1, loads[len(loads)-1])
	}
	fmt.Println()

	mem := memory(servers)
	var swaps []swapResult
	var largest *server
	for _, s := range servers {
		if largest == nil || s.policies > largest.policies {
			largest = s
		}
	}
	if largest != nil && largest.policies > 0 && c.swaps > 0 {
		for i := 0; i < c.swaps; i++ {
			sw, err := swap(ctx, c, largest, i, protoset, reqJSON)
			if err != nil {
				return err
			}
			swaps = append(swaps, sw)
		}
	}
	peakAfterSwaps := status(largest.cmd.Process.Pid)["VmHWM"]

	profiles, profileNote := profileServers(ctx, c, servers, protoset, reqJSON)

	report(os.Stdout, c, samples, inproc, inject, mem, swaps, largest, peakAfterSwaps)
	reportProfile(os.Stdout, profiles)
	if profileNote != "" {
		fmt.Printf("\n%s\n", profileNote)
	}
	fmt.Printf("\nload average per round: %s\nload average at end: %s\nduration: %s\n", strings.Join(loads, " | "), loadavg(),
		time.Since(start).Round(time.Second))
	return nil
}

func writeInputs(dir string, n int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rb, err := protojson.Marshal(bench.LoadRequest())
	if err != nil {
		return err
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.WriteFile(filepath.Join(parent, "request.json"), rb, 0o644); err != nil {
		return err
	}
	if err := writeProtoset(filepath.Join(parent, "authz.protoset")); err != nil {
		return err
	}
	return writePolicies(dir, n, false)
}

// writeProtoset writes the Authorization service's descriptors with their
// dependencies for ghz (no reflection call inside a measured run).
func writeProtoset(path string) error {
	seen := map[string]bool{}
	var files []*descriptorpb.FileDescriptorProto
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imps := fd.Imports()
		for i := 0; i < imps.Len(); i++ {
			add(imps.Get(i).FileDescriptor)
		}
		files = append(files, protodesc.ToFileDescriptorProto(fd))
	}
	add(authv3.File_envoy_service_auth_v3_external_auth_proto)
	b, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: files})
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

func (s *server) start(ctx context.Context, c config) error {
	// A leftover process on the port would answer in this server's place
	// (and its CPU and memory would be read from the wrong process).
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("start %s: %s is taken (a leftover server?): %w", s.name, s.addr, err)
	}
	_ = l.Close()
	s.logPath = filepath.Join(c.work, s.name+".log")
	logf, err := os.Create(s.logPath)
	if err != nil {
		return err
	}
	if s.policies < 0 {
		s.cmd = exec.CommandContext(ctx, c.noop, "-addr", s.addr)
	} else {
		s.dir = filepath.Join(c.work, s.name)
		if err := os.MkdirAll(s.dir, 0o755); err != nil {
			return err
		}
		if err := writePolicies(s.dir, s.policies, false); err != nil {
			return err
		}
		s.cmd = exec.CommandContext(ctx, c.meshguard, "authz", "serve", "--policy-dir", s.dir, "--authz-addr", s.addr)
	}
	// gctrace: GC cycles per run and the live heap; the same for every server.
	s.cmd.Env = append(os.Environ(), "GODEBUG=gctrace=1")
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.started = time.Now()
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.name, err)
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	return nil
}

func (s *server) hasExited() bool {
	select {
	case <-s.exited:
		return true
	default:
		return false
	}
}

// writePolicies writes bench.Set(n) as YAML. alt renames ns-0/p-0 (same
// rules, same age) to ns-0/p-0-swapped: a new snapshot with the same policy
// count and verdicts, visible in the x-meshguard-policy response header.
const swappedName = "p-0-swapped"

func writePolicies(dir string, n int, alt bool) error {
	b, err := renderPolicies(n, alt)
	if err != nil {
		return err
	}
	return installPolicies(dir, b)
}

// renderPolicies is the policy file for n policies (alt: ns-0/p-0 renamed).
func renderPolicies(n int, alt bool) ([]byte, error) {
	set := bench.Set(n)
	var buf bytes.Buffer
	for _, ap := range set.AuthorizationPolicies {
		ap.APIVersion, ap.Kind = "security.istio.io/v1", "AuthorizationPolicy"
		if alt && ap.Name == "p-0" {
			ap.Name = swappedName
		}
		ap.CreationTimestamp.Time = ap.CreationTimestamp.Time.UTC()
		b, err := yaml.Marshal(ap)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
		buf.WriteString("---\n")
	}
	for _, p := range set.Pods {
		b, err := yaml.Marshal(p)
		if err != nil {
			return nil, err
		}
		buf.Write(b)
		buf.WriteString("---\n")
	}
	return buf.Bytes(), nil
}

// installPolicies writes the file beside the directory and renames it in:
// the watcher never sees a partial file.
func installPolicies(dir string, b []byte) error {
	tmp := filepath.Join(filepath.Dir(dir), "."+filepath.Base(dir)+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, "policies.yaml"))
}

// check sends the load request once and returns the deciding policy header.
func check(ctx context.Context, addr string) (string, error) {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return "", err
	}
	defer conn.Close()
	return checkOn(ctx, conn)
}

func checkOn(ctx context.Context, conn *grpc.ClientConn) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, bench.LoadRequest())
	if err != nil {
		return "", err
	}
	if resp.GetStatus().GetCode() != 0 {
		return "", fmt.Errorf("load request denied: %v", resp.GetStatus())
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "x-meshguard-policy" {
			return h.GetHeader().GetValue(), nil
		}
	}
	return "", nil
}

func (s *server) awaitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		pol, err := check(ctx, s.addr)
		if err == nil {
			if s.policies > 0 && pol != "ns-0/p-0" {
				return fmt.Errorf("%s: load request decided by %q, want ns-0/p-0", s.name, pol)
			}
			return nil
		}
		if s.hasExited() || time.Now().After(deadline) {
			log, _ := os.ReadFile(s.logPath)
			return fmt.Errorf("%s not ready: %v\n%s", s.name, err, tail(log, 20))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// cpuTicks is utime+stime of pid (/proc/<pid>/stat fields 14 and 15).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return u + s, nil
}

// gcLine is one GODEBUG=gctrace=1 line: when the cycle started (seconds
// since the process started), its three wall-clock phases (ms) and the heap
// before, at the end of marking and live after it (MB).
var gcLine = regexp.MustCompile(`(?m)^gc \d+ @([\d.]+)s \d+%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock.*?(\d+)->(\d+)->(\d+) MB`)

// gcCycle is one collection of a server's gctrace log.
type gcCycle struct {
	at, clock time.Duration // start since the process started; wall-clock length
	liveMB    int
}

// gcCycles reads the collections of a gctrace log, in order.
func gcCycles(b []byte) []gcCycle {
	var out []gcCycle
	for _, m := range gcLine.FindAllSubmatch(b, -1) {
		at, _ := strconv.ParseFloat(string(m[1]), 64)
		var ms float64
		for _, p := range m[2:5] {
			f, _ := strconv.ParseFloat(string(p), 64)
			ms += f
		}
		live, _ := strconv.Atoi(string(m[7]))
		out = append(out, gcCycle{at: time.Duration(at * float64(time.Second)), clock: time.Duration(ms * float64(time.Millisecond)), liveMB: live})
	}
	return out
}

// gcStats counts the gctrace lines in the log and returns the last live heap (MB).
func gcStats(path string) (int, int) {
	b, _ := os.ReadFile(path)
	cs := gcCycles(b)
	if len(cs) == 0 {
		return 0, 0
	}
	return len(cs), cs[len(cs)-1].liveMB
}

// gcOverlaps counts the GC cycles of the server's gctrace log that overlap
// [from, to] (wall clock; a cycle runs from its start for the sum of its
// clock phases), so a swap window can be told apart from one that happened
// to contain a collection.
func gcOverlaps(s *server, from, to time.Time) int {
	b, _ := os.ReadFile(s.logPath)
	n := 0
	for _, c := range gcCycles(b) {
		start := s.started.Add(c.at)
		if end := start.Add(c.clock); !start.After(to) && !end.Before(from) {
			n++
		}
	}
	return n
}

type ghzReport struct {
	Count               int     `json:"count"`
	Rps                 float64 `json:"rps"`
	Slowest             float64 `json:"slowest"`
	LatencyDistribution []struct {
		Percentage int     `json:"percentage"`
		Latency    float64 `json:"latency"`
	} `json:"latencyDistribution"`
	StatusCodeDistribution map[string]int `json:"statusCodeDistribution"`
	Details                []struct {
		Timestamp time.Time `json:"timestamp"`
		Latency   float64   `json:"latency"`
		Status    string    `json:"status"`
	} `json:"details"`
}

func (r *ghzReport) pct(p int) float64 {
	for _, l := range r.LatencyDistribution {
		if l.Percentage == p {
			return l.Latency / 1e6
		}
	}
	return math.NaN()
}

func ghzArgs(c config, protoset, reqJSON string, conc int, addr string) []string {
	conns := 2
	if conc < conns {
		conns = conc
	}
	return []string{"--insecure", "--protoset", protoset, "--call", "envoy.service.auth.v3.Authorization/Check",
		"-D", reqJSON, "-c", strconv.Itoa(conc), "--connections", strconv.Itoa(conns), addr}
}

// ghzCmd runs ghz with GOGC=400 (its own collections would otherwise land in
// the latencies it records; docs/benchmarks.md).
func ghzCmd(c config, args ...string) *exec.Cmd {
	cmd := exec.Command(c.ghz, args...)
	cmd.Env = append(os.Environ(), "GOGC=400")
	return cmd
}

func measure(c config, s *server, conc int, protoset, reqJSON string) (sample, error) {
	base := ghzArgs(c, protoset, reqJSON, conc, s.addr)
	if c.warmup > 0 {
		if out, err := ghzCmd(c, append([]string{"-n", strconv.Itoa(c.warmup), "-O", "summary"}, base...)...).CombinedOutput(); err != nil {
			return sample{}, fmt.Errorf("ghz warm-up %s: %v\n%s", s.name, err, out)
		}
	}
	pid := s.cmd.Process.Pid
	gc0, _ := gcStats(s.logPath)
	t0, err := cpuTicks(pid)
	if err != nil {
		return sample{}, err
	}
	out, err := ghzCmd(c, append([]string{"-n", strconv.Itoa(c.requests), "-O", "json"}, base...)...).Output()
	if err != nil {
		return sample{}, fmt.Errorf("ghz %s: %v", s.name, err)
	}
	t1, err := cpuTicks(pid)
	if err != nil {
		return sample{}, err
	}
	gc1, _ := gcStats(s.logPath)
	var rep ghzReport
	if err := json.Unmarshal(out, &rep); err != nil {
		return sample{}, fmt.Errorf("ghz %s output: %w", s.name, err)
	}
	sm := sample{conc: conc, server: s.name, requests: rep.Count, ok: rep.StatusCodeDistribution["OK"], rps: rep.Rps,
		p50: rep.pct(50), p99: rep.pct(99), slowest: rep.Slowest / 1e6, gcs: gc1 - gc0}
	if sm.ok != c.requests {
		return sm, fmt.Errorf("%s: %d of %d requests OK: %v", s.name, sm.ok, c.requests, rep.StatusCodeDistribution)
	}
	sm.cpuPerReq = float64(t1-t0) / float64(c.clkTck) / float64(sm.requests) * 1e6
	return sm, nil
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op.*?(?:\s([\d.]+) allocs/op)?$`)

func goBench(bin, dir, pattern, benchtime string) ([]benchResult, error) {
	cmd := exec.Command(bin, "-test.run", "^$", "-test.bench", pattern, "-test.benchtime", benchtime, "-test.benchmem")
	if dir != "" {
		abs, err := filepath.Abs(bin)
		if err != nil {
			return nil, err
		}
		cmd = exec.Command(abs, cmd.Args[1:]...)
		cmd.Dir = dir
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%s -test.bench %s: %v\n%s", bin, pattern, err, out)
	}
	var res []benchResult
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		m := benchLine.FindStringSubmatch(strings.TrimSpace(sc.Text()))
		if m == nil {
			continue
		}
		ns, _ := strconv.ParseFloat(m[2], 64)
		al, _ := strconv.ParseFloat(m[3], 64)
		res = append(res, benchResult{name: m[1], nsOp: ns, allocs: al})
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("%s -test.bench %s: no benchmark lines\n%s", bin, pattern, out)
	}
	return res, nil
}

type memResult struct {
	name            string
	rssMB, hwmMB    float64
	anonMB, fileMB  float64 // RssAnon (heap, stacks, runtime) and RssFile (the binary's mapped pages)
	gcs, liveHeapMB int
}

func status(pid int) map[string]float64 {
	out := map[string]float64{}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return out
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 2 && f[1] == "kB" {
			n, _ := strconv.ParseFloat(f[0], 64)
			out[k] = n / 1024
		}
	}
	return out
}

func memory(servers []*server) []memResult {
	var out []memResult
	for _, s := range servers {
		st := status(s.cmd.Process.Pid)
		gcs, live := gcStats(s.logPath)
		out = append(out, memResult{name: s.name, rssMB: st["VmRSS"], hwmMB: st["VmHWM"],
			anonMB: st["RssAnon"], fileMB: st["RssFile"], gcs: gcs, liveHeapMB: live})
	}
	return out
}

type swapResult struct {
	seconds      float64 // file written → first answer from the new snapshot
	during       int     // requests started during the swap
	p99, slowest float64 // ms, of those requests
	// The same figures for the requests of an equally long window of the same
	// load just before the write (steadyN: how many; fewer when the swap took
	// longer than the time the load ran before it).
	steadyN                  int
	steadyP99, steadySlowest float64
	// GC cycles of the server overlapping the swap and the window before.
	gcDuring, gcBefore int
}

// swapPreload is how long the load runs before the file is written: the
// steady window the swap is compared with is as long as the swap, up to this.
const swapPreload = 4 * time.Second

// swap rewrites the largest server's policies (alternating ns-0/p-0) under a
// concurrency-2 ghz load and measures how long until the new snapshot
// answers, and the latencies of the requests started meanwhile against those
// of an equally long window just before. The file is rendered before the load
// starts, and the new snapshot is awaited on one connection, so the harness's
// own work stays out of the window.
func swap(ctx context.Context, c config, s *server, i int, protoset, reqJSON string) (swapResult, error) {
	want := "ns-0/" + swappedName
	if i%2 == 1 {
		want = "ns-0/p-0"
	}
	content, err := renderPolicies(s.policies, i%2 == 0)
	if err != nil {
		return swapResult{}, err
	}
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return swapResult{}, err
	}
	defer conn.Close()
	if _, err := checkOn(ctx, conn); err != nil {
		return swapResult{}, err
	}
	var out bytes.Buffer
	load := ghzCmd(c, append([]string{"-n", "100000000", "-O", "json"}, ghzArgs(c, protoset, reqJSON, 2, s.addr)...)...)
	load.Stdout = &out
	if err := load.Start(); err != nil {
		return swapResult{}, err
	}
	started := time.Now()
	time.Sleep(swapPreload)
	t0 := time.Now()
	if err := installPolicies(s.dir, content); err != nil {
		_ = load.Process.Kill()
		return swapResult{}, err
	}
	var took time.Duration
	for {
		pol, err := checkOn(ctx, conn)
		if err == nil && pol == want {
			took = time.Since(t0)
			break
		}
		if time.Since(t0) > 5*time.Minute {
			_ = load.Process.Kill()
			return swapResult{}, fmt.Errorf("swap %d: no answer from the new snapshot after 5 minutes (last %q %v)", i, pol, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t1 := time.Now()
	time.Sleep(500 * time.Millisecond)
	_ = load.Process.Signal(os.Interrupt)
	if err := load.Wait(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return swapResult{}, err
		}
	}
	var rep ghzReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		return swapResult{}, fmt.Errorf("swap %d: ghz output: %w (%s)", i, err, tail(out.Bytes(), 3))
	}
	// The steady window ends at the write and is as long as the swap; its
	// first second after the load started is left out (connections warming).
	steadyFrom := t0.Add(-took)
	if earliest := started.Add(time.Second); steadyFrom.Before(earliest) {
		steadyFrom = earliest
	}
	var lat, steady []float64
	for _, d := range rep.Details {
		switch {
		case d.Timestamp.After(t0) && d.Timestamp.Before(t1):
			lat = append(lat, d.Latency/1e6)
		case d.Timestamp.After(steadyFrom) && d.Timestamp.Before(t0):
			steady = append(steady, d.Latency/1e6)
		}
	}
	r := swapResult{seconds: took.Seconds(), during: len(lat), steadyN: len(steady),
		gcDuring: gcOverlaps(s, t0, t1), gcBefore: gcOverlaps(s, steadyFrom, t0)}
	r.p99, r.slowest = p99AndMax(lat)
	r.steadyP99, r.steadySlowest = p99AndMax(steady)
	return r, nil
}

func p99AndMax(lat []float64) (p99, slowest float64) {
	if len(lat) == 0 {
		return 0, 0
	}
	sort.Float64s(lat)
	return lat[int(math.Ceil(0.99*float64(len(lat))))-1], lat[len(lat)-1]
}

func cpuModel() string {
	b, _ := os.ReadFile("/proc/cpuinfo")
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			_, v, _ := strings.Cut(l, ":")
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func stats(xs []float64) (lo, med, hi float64) {
	if len(xs) == 0 {
		return math.NaN(), math.NaN(), math.NaN()
	}
	s := append([]float64{}, xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return s[0], m, s[len(s)-1]
}

type ratioRow struct {
	figure, target string
	values         []float64
	met            func(med float64) bool
}

func report(w io.Writer, c config, samples []sample, inproc, inject []benchResult, mem []memResult, swaps []swapResult, largest *server, peakMB float64) {
	get := func(round, conc int, server string) *sample {
		for i := range samples {
			if s := &samples[i]; s.round == round && s.conc == conc && s.server == server {
				return s
			}
		}
		return nil
	}
	perRound := func(f func(round int) (float64, bool)) []float64 {
		var out []float64
		for r := 1; r <= c.rounds; r++ {
			if v, ok := f(r); ok {
				out = append(out, v)
			}
		}
		return out
	}
	ratio := func(conc int, num, den string, field func(*sample) float64) []float64 {
		return perRound(func(r int) (float64, bool) {
			a, b := get(r, conc, num), get(r, conc, den)
			if a == nil || b == nil || field(b) == 0 {
				return 0, false
			}
			return field(a) / field(b), true
		})
	}
	cpu := func(s *sample) float64 { return s.cpuPerReq }
	p99 := func(s *sample) float64 { return s.p99 }
	rps := func(s *sample) float64 { return s.rps }
	le := func(x float64) func(float64) bool { return func(m float64) bool { return m <= x } }
	ge := func(x float64) func(float64) bool { return func(m float64) bool { return m >= x } }

	var rows []ratioRow
	for _, conc := range c.concurrency {
		rows = append(rows, ratioRow{fmt.Sprintf("gRPC server CPU/request, 1,000 policies / no-op, c=%d", conc), "≤ 1.2x",
			ratio(conc, "meshguard-1000", "noop", cpu), le(1.2)})
	}
	for _, conc := range c.concurrency {
		rows = append(rows, ratioRow{fmt.Sprintf("gRPC p99, 1,000 policies / no-op, c=%d", conc), "≤ 1.1x",
			ratio(conc, "meshguard-1000", "noop", p99), le(1.1)})
	}
	for _, conc := range c.concurrency {
		rows = append(rows, ratioRow{fmt.Sprintf("gRPC server CPU/request, 10,000 / 10 policies, c=%d", conc), "≤ 1.15x",
			ratio(conc, "meshguard-10000", "meshguard-10", cpu), le(1.15)})
		rows = append(rows, ratioRow{fmt.Sprintf("gRPC throughput, 10,000 / 10 policies, c=%d", conc), "≥ 0.9x",
			ratio(conc, "meshguard-10000", "meshguard-10", rps), ge(0.9)})
	}
	benchRatio := func(res []benchResult, num, den string, field func(benchResult) float64) []float64 {
		return perRound(func(r int) (float64, bool) {
			var a, b *benchResult
			for i := range res {
				if res[i].round == r && res[i].name == num {
					a = &res[i]
				}
				if res[i].round == r && res[i].name == den {
					b = &res[i]
				}
			}
			if a == nil || b == nil || field(*b) == 0 {
				return 0, false
			}
			return field(*a) / field(*b), true
		})
	}
	ns := func(b benchResult) float64 { return b.nsOp }
	allocsOf := func(res []benchResult, name string) []float64 {
		var out []float64
		for _, b := range res {
			if b.name == name {
				out = append(out, b.allocs)
			}
		}
		return out
	}
	if len(inproc) > 0 {
		rows = append(rows,
			ratioRow{"in-process, 1,000 policies: OPA policies-as-data time / meshguard Check time", "≥ 10x",
				benchRatio(inproc, "BenchmarkSideBySide/impl=opa-data/policies=1000", "BenchmarkSideBySide/impl=meshguard/policies=1000", ns), ge(10)},
			ratioRow{"in-process meshguard Check allocs/op, 1,000 policies (absolute)", "≤ 40",
				allocsOf(inproc, "BenchmarkSideBySide/impl=meshguard/policies=1000"), le(40)},
			ratioRow{"in-process OPA policies-as-data allocs/op, 1,000 policies (absolute)", "",
				allocsOf(inproc, "BenchmarkSideBySide/impl=opa-data/policies=1000"), nil})
	}
	if len(inject) > 0 {
		rows = append(rows,
			ratioRow{"/inject tiny pod / floor (decode + empty patch)", "≤ 2.5x",
				benchRatio(inject, "BenchmarkInjectHandler/tiny", "BenchmarkInjectFloor/tiny", ns), le(2.5)},
			ratioRow{"/inject tiny pod allocs/op (absolute)", "≤ 150", allocsOf(inject, "BenchmarkInjectHandler/tiny"), le(150)},
			ratioRow{"/inject 2,000-env pod / floor", "≤ 1x",
				benchRatio(inject, "BenchmarkInjectHandler/env2000", "BenchmarkInjectFloor/env2000", ns), le(1)})
	}

	fmt.Fprintf(w, "## Ratios (per round; min / median / max over %d rounds)\n\n", c.rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "figure\ttarget\tmin\tmedian\tmax\tmet (median)\tper round")
	for _, r := range rows {
		lo, med, hi := stats(r.values)
		met := ""
		if r.met != nil && !math.IsNaN(med) {
			met = "no"
			if r.met(med) {
				met = "yes"
			}
		}
		var each []string
		for _, v := range r.values {
			each = append(each, fmt.Sprintf("%.2f", v))
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%.2f\t%.2f\t%s\t%s\n", r.figure, r.target, lo, med, hi, met, strings.Join(each, " "))
	}
	tw.Flush()

	fmt.Fprintf(w, "\n## Raw gRPC figures (ghz over 127.0.0.1, %d requests per run, %d warm-up; CPU = server utime+stime / requests)\n\n", c.requests, c.warmup)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "round\tconcurrency\tserver\tCPU µs/req\tp50 ms\tp99 ms\tslowest ms\trps\tGC cycles")
	for _, s := range samples {
		fmt.Fprintf(tw, "%d\t%d\t%s\t%.1f\t%.3f\t%.3f\t%.2f\t%.0f\t%d\n", s.round, s.conc, s.server, s.cpuPerReq, s.p50, s.p99, s.slowest, s.rps, s.gcs)
	}
	tw.Flush()

	for _, set := range []struct {
		title string
		res   []benchResult
	}{{"in-process (test/bench/opabaseline BenchmarkSideBySide)", inproc}, {"/inject (webhook)", inject}} {
		if len(set.res) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n## Raw %s\n\n", set.title)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "round\tbenchmark\tns/op\tallocs/op")
		for _, b := range set.res {
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.0f\n", b.round, b.name, b.nsOp, b.allocs)
		}
		tw.Flush()
	}

	fmt.Fprintf(w, "\n## Memory (after the rounds; live heap from the last gctrace line; target RSS ≤ 150 MB at 10,000 policies)\n\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "server\tRSS MB\tof which anonymous / file-backed MB\tpeak RSS MB (start-up compile)\tlive heap MB\tGC cycles total")
	for _, m := range mem {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f / %.0f\t%.0f\t%d\t%d\n", m.name, m.rssMB, m.anonMB, m.fileMB, m.hwmMB, m.liveHeapMB, m.gcs)
	}
	tw.Flush()
	if len(swaps) > 0 {
		var steady []float64
		for _, s := range samples {
			if s.server == largest.name && s.conc == 2 {
				steady = append(steady, s.p99)
			}
		}
		_, steadyP99, _ := stats(steady)
		fmt.Fprintf(w, "\n## Snapshot swap, %s under ghz at concurrency 2 (steady p99 at c=2: %.3f ms median of the rounds)\n\n", largest.name, steadyP99)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "swap\twrite → new snapshot answers (s, incl. debounce)\trequests started meanwhile\tp99 ms\tslowest ms\tGC cycles\tslowest ≤ steady p99\tsame-length window before: requests\tp99 ms\tslowest ms\tGC cycles")
		for i, s := range swaps {
			ok := "yes"
			if s.slowest > steadyP99 {
				ok = "NO"
			}
			fmt.Fprintf(tw, "%d\t%.2f\t%d\t%.3f\t%.3f\t%d\t%s\t%d\t%.3f\t%.3f\t%d\n", i+1, s.seconds, s.during, s.p99, s.slowest, s.gcDuring, ok, s.steadyN, s.steadyP99, s.steadySlowest, s.gcBefore)
		}
		tw.Flush()
		fmt.Fprintf(w, "peak RSS of %s after the swaps: %.0f MB\n", largest.name, peakMB)
	}
}
