package main

import (
	"bufio"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/switchboard/switchboard/internal/testutil"
)

// The deploy examples (deploy/Dockerfile, docker-compose.yml,
// switchboard.service and the example environment files) are held to the
// product here: the Dockerfile is parsed and its go build line run, and
// the exact serve command lines of the compose file and of the systemd
// unit are started as real processes. Docker and systemd are not
// available to tests, so the test plays their part:
//
//   - argv is the image's ENTRYPOINT followed by the service's command (the
//     compose file), or the unit's ExecStart (the unit file), word for
//     word;
//   - the environment is exactly what the container or the unit would get:
//     the Dockerfile's ENV, the service's env_file (its committed
//     ".example") and environment; or the unit's EnvironmentFile (the
//     committed example). Nothing of the test's own environment leaks in.
//
// Then, and only then, host names, ports and paths that exist only in a
// container or on a server are substituted with loopback ones the test
// holds: "nodeN:740x" and, inside node N, "0.0.0.0:740x" and
// "127.0.0.1:740x" (its own ports) become node N's held ports; the example
// machine's "10.0.0.1:740x" likewise; the data dir (/data, or
// /var/lib/switchboard) becomes a temporary directory; the binary's
// installed path becomes the binary built here. Each process is also
// handed its held ports with --client-listener-fd, --raft-listener-fd and
// --http-listener-fd (the e2e tests' way, so that no port is picked,
// released and bound again). A value the substitution leaves naming a
// container host or the example machine fails the test.

// deployDir is the repository's deploy/ directory.
const deployDir = "../../deploy"

// dockerInstr is one Dockerfile instruction, continuation lines joined.
type dockerInstr struct {
	cmd   string // upper case: FROM, RUN, ...
	args  string
	stage int // 0 for the first FROM's stage
}

// parseDockerfile reads the instructions of deploy/Dockerfile: comments
// dropped, lines ending in a backslash joined with the next.
func parseDockerfile(t *testing.T) []dockerInstr {
	t.Helper()
	f, err := os.Open(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		out   []dockerInstr
		cur   string
		stage = -1
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur == "") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		cur += line
		word, rest, _ := strings.Cut(cur, " ")
		word = strings.ToUpper(word)
		if word == "FROM" {
			stage++
		}
		out = append(out, dockerInstr{cmd: word, args: strings.TrimSpace(rest), stage: stage})
		cur = ""
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != "" {
		t.Fatalf("Dockerfile ends in a continuation line: %q", cur)
	}
	return out
}

// execForm decodes an exec-form (JSON array) argument, failing the test
// on the shell form.
func execForm(t *testing.T, what, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s %s: want the exec form (a JSON array), which needs no shell: %v", what, args, err)
	}
	return argv
}

// dockerImage is what the final stage of the Dockerfile gives a container.
type dockerImage struct {
	entrypoint []string
	env        map[string]string
	user       string
	volumes    []string
	expose     []string
	health     []string // HEALTHCHECK's CMD
}

// finalImage reads the final stage's configuration.
func finalImage(t *testing.T, instrs []dockerInstr) dockerImage {
	t.Helper()
	last := instrs[len(instrs)-1].stage
	img := dockerImage{env: map[string]string{}}
	for _, in := range instrs {
		if in.stage != last {
			continue
		}
		switch in.cmd {
		case "ENTRYPOINT":
			img.entrypoint = execForm(t, "ENTRYPOINT", in.args)
		case "USER":
			img.user = in.args
		case "VOLUME":
			img.volumes = append(img.volumes, execForm(t, "VOLUME", in.args)...)
		case "EXPOSE":
			img.expose = append(img.expose, strings.Fields(in.args)...)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(in.args, " CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %s: no CMD", in.args)
			}
			img.health = execForm(t, "HEALTHCHECK CMD", strings.TrimSpace(cmd))
		case "ENV":
			for _, kv := range strings.Fields(in.args) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("ENV %s: want KEY=value pairs", in.args)
				}
				img.env[k] = v
			}
		}
	}
	return img
}

func TestDockerfileIsAStaticNonRootImageWithoutShell(t *testing.T) {
	instrs := parseDockerfile(t)
	seen := map[string]int{}
	for _, in := range instrs {
		seen[in.cmd]++
	}
	for _, want := range []string{"FROM", "RUN", "COPY", "ENTRYPOINT", "USER", "VOLUME", "EXPOSE"} {
		if seen[want] == 0 {
			t.Errorf("no %s instruction", want)
		}
	}
	last := instrs[len(instrs)-1].stage
	for _, in := range instrs {
		if in.stage != last {
			continue
		}
		switch in.cmd {
		case "FROM":
			if in.args != "scratch" {
				t.Errorf("final stage FROM %s, want scratch (nothing but the binaries)", in.args)
			}
		case "RUN":
			t.Errorf("final stage RUN %s: the final image has no shell to run it", in.args)
		}
	}
	img := finalImage(t, instrs)
	if want := []string{"/usr/local/bin/switchboard", "serve"}; !slices.Equal(img.entrypoint, want) {
		t.Errorf("ENTRYPOINT %q, want %q", img.entrypoint, want)
	}
	uid, gid, _ := strings.Cut(img.user, ":")
	for _, id := range []string{uid, gid} {
		if n, err := strconv.Atoi(id); err != nil || n == 0 {
			t.Errorf("USER %q: want a numeric, non-root uid:gid (a name needs /etc/passwd, which scratch lacks)", img.user)
			break
		}
	}
	if data := img.env["SWITCHBOARD_DATA"]; !slices.Contains(img.volumes, data) || data == "" {
		t.Errorf("VOLUME %q does not hold the data dir SWITCHBOARD_DATA=%q", img.volumes, data)
	}
	for _, p := range []string{"7400", "7401", "7402"} {
		if !slices.Contains(img.expose, p) {
			t.Errorf("EXPOSE %q lacks %s", img.expose, p)
		}
	}
	for k, v := range map[string]string{"SWITCHBOARD_CLIENT_ADDR": ":7400", "SWITCHBOARD_RAFT_ADDR": ":7401", "SWITCHBOARD_HTTP_ADDR": ":7402"} {
		if !strings.HasPrefix(img.env[k], "0.0.0.0") || !strings.HasSuffix(img.env[k], v) {
			t.Errorf("ENV %s=%q: a container must listen on every interface at the exposed port %s", k, img.env[k], v)
		}
	}
	if len(img.health) != 2 || !strings.HasSuffix(img.health[1], ":7402/readyz") {
		t.Errorf("HEALTHCHECK CMD %q: want the probe of /readyz on the HTTP port", img.health)
	}
	// What the final stage runs must be what the build stage built.
	b := dockerBuild(t)
	for _, argv := range [][]string{img.entrypoint, img.health} {
		if _, err := os.Stat(filepath.Join(b.dir, filepath.Base(argv[0]))); err != nil {
			t.Errorf("%s is not among the binaries the go build line produces: %v", argv[0], err)
		}
	}
}

// dockerBuilt is the outcome of running the Dockerfile's go build line.
type dockerBuilt struct {
	dir string // the binaries, in place of the Dockerfile's /out/
	err error
}

var (
	dockerBuildOnce sync.Once
	dockerBuildOut  dockerBuilt
)

// dockerBuildVersion is the VERSION build argument the test passes.
const dockerBuildVersion = "v0.0.0-deploy-test"

// dockerBuild runs the Dockerfile's go build line here, once per test
// run, as the build stage does: with /bin/sh, from the repository root,
// VERSION set as the build argument, its output dir /out/ replaced by a
// temporary one.
func dockerBuild(t *testing.T) dockerBuilt {
	t.Helper()
	dockerBuildOnce.Do(func() {
		var line string
		for _, in := range parseDockerfile(t) {
			if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
				line = in.args
			}
		}
		if line == "" {
			dockerBuildOut.err = fmt.Errorf("the Dockerfile has no RUN ... go build line")
			return
		}
		if !strings.Contains(line, "-o /out/ ") {
			dockerBuildOut.err = fmt.Errorf("the go build line %q does not write to /out/", line)
			return
		}
		// Under the e2e binary's directory, which TestMain removes.
		e2eBinary(t)
		dir := filepath.Join(e2eBinDir, "docker-build")
		dockerBuildOut.dir = dir
		cmd := exec.Command("/bin/sh", "-c", strings.Replace(line, "-o /out/ ", "-o "+dir+"/ ", 1))
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "VERSION="+dockerBuildVersion)
		if out, err := cmd.CombinedOutput(); err != nil {
			dockerBuildOut.err = fmt.Errorf("RUN %s: %v\n%s", line, err, out)
		}
	})
	if dockerBuildOut.err != nil {
		t.Fatal(dockerBuildOut.err)
	}
	return dockerBuildOut
}

func TestDockerfileBuildLineBuildsAStaticStampedBinary(t *testing.T) {
	b := dockerBuild(t)
	bin := filepath.Join(b.dir, "switchboard")
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("switchboard version: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), dockerBuildVersion) {
		t.Errorf("switchboard version printed %q, want the stamped %s", out, dockerBuildVersion)
	}
	for _, name := range []string{"switchboard", "healthcheck"} {
		f, err := elf.Open(filepath.Join(b.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v): scratch has no libc", name, p.Type)
			}
		}
		f.Close()
	}
}

// composeFile is the part of deploy/docker-compose.yml the test runs.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
}

type composeService struct {
	Hostname    string            `yaml:"hostname"`
	Command     []string          `yaml:"command"`
	EnvFile     string            `yaml:"env_file"`
	Environment map[string]string `yaml:"environment"`
	Volumes     []string          `yaml:"volumes"`
	Healthcheck struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
}

// readEnvFile reads KEY=value lines (blank lines and # comments skipped),
// the format both compose's env_file and systemd's EnvironmentFile take
// for the examples here.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(v, `"'`) {
			t.Fatalf("%s:%d: %q: want KEY=value without quotes", path, i+1, line)
		}
		env[k] = v
	}
	return env
}

// deployProc is one process the test runs for a deploy example, with its
// held ports and the substitution of its container or server addresses.
type deployProc struct {
	*procNode
	sub *strings.Replacer
}

// newDeployProc holds three loopback ports for a process named name,
// its data and log under root.
func newDeployProc(t *testing.T, root, name string) *deployProc {
	return &deployProc{procNode: newProcNode(t, name, root, nil)}
}

// ports maps host:7400, :7401 and :7402 to p's client, Raft and HTTP
// ports, for each of hosts: replacement pairs for strings.NewReplacer.
func (p *deployProc) portPairs(hosts ...string) []string {
	var pairs []string
	for _, h := range hosts {
		pairs = append(pairs, h+":7400", p.client, h+":7401", p.raft, h+":7402", p.http)
	}
	return pairs
}

// substitute applies p's substitution to every argument and environment
// value and fails the test if one still names a host or address that
// exists only in the container network or on the example machine.
func (p *deployProc) substitute(t *testing.T, argv []string, env map[string]string, foreign ...string) ([]string, []string) {
	t.Helper()
	check := func(what, s string) string {
		s = p.sub.Replace(s)
		for _, f := range foreign {
			if strings.Contains(s, f) {
				t.Fatalf("%s: %s %q still names %q after substitution: the test does not know how to run it", p.id, what, s, f)
			}
		}
		return s
	}
	var args []string
	for _, a := range argv {
		args = append(args, check("argument", a))
	}
	var envv []string
	for k, v := range env {
		envv = append(envv, k+"="+check(k, v))
	}
	sort.Strings(envv)
	return args, envv
}

// startExact starts argv (argv[0] the binary) with exactly env, handing it
// the held ports as descriptors 3, 4 and 5 with the --*-listener-fd flags
// appended. It reuses procNode's plumbing (kill, dumpLog, the refusing
// held ports) but not its command line, which adds flags of its own.
func (p *deployProc) startExact(t *testing.T, argv, env []string) {
	t.Helper()
	lf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	argv = append(slices.Clone(argv), "--client-listener-fd", "3", "--raft-listener-fd", "4", "--http-listener-fd", "5")
	fmt.Fprintf(lf, "=== %q\n    env %q\n", argv, env)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	for _, hp := range p.ports {
		hp.pause()
		f := hp.file(t)
		defer f.Close() // the child has its own copy once started
		cmd.ExtraFiles = append(cmd.ExtraFiles, f)
	}
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("start %s: %v", p.id, err)
	}
	p.cmd = cmd
	exited := make(chan struct{})
	p.exited = exited
	ports := p.ports
	go func() {
		_ = cmd.Wait()
		lf.Close()
		for _, hp := range ports {
			hp.refuse()
		}
		close(exited)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.dumpLog(40)
		}
	})
}

// readyz is a node's /readyz answer.
type readyz struct {
	code   int
	Ready  bool   `json:"ready"`
	Reason string `json:"reason"`
	Node   string `json:"node"`
	Leader string `json:"leader"`
}

func getReadyz(addr string) (readyz, error) {
	var r readyz
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get("http://" + addr + "/readyz")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	r.code = resp.StatusCode
	b, err := io.ReadAll(resp.Body)
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	return r, err
}

// waitReady waits until the process's /readyz answers 200, asking at most
// every 200ms, and fails the test if it exits first.
func waitReady(t *testing.T, p *deployProc) readyz {
	t.Helper()
	var (
		last readyz
		err  error
		at   time.Time
	)
	testutil.WaitFor(t, e2eWait, func() bool {
		select {
		case <-p.exited:
			t.Fatalf("%s exited before it was ready", p.id)
		default:
		}
		if time.Since(at) < 200*time.Millisecond {
			return false
		}
		at = time.Now()
		last, err = getReadyz(p.http)
		return err == nil && last.code == http.StatusOK
	}, "%s: /readyz never answered 200", testutil.Lazy(func() string { return fmt.Sprintf("%s (last: %+v, %v)", p.id, last, err) }))
	return last
}

func TestDeployComposeFormsAThreeNodeCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three processes")
	}
	img := finalImage(t, parseDockerfile(t))
	b, err := os.ReadFile(filepath.Join(deployDir, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cf composeFile
	if err := yaml.Unmarshal(b, &cf); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	var names []string
	for name := range cf.Services {
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) != 3 {
		t.Fatalf("services %q, want three nodes", names)
	}
	dataDir := img.env["SWITCHBOARD_DATA"]
	bin := filepath.Join(dockerBuild(t).dir, filepath.Base(img.entrypoint[0]))
	probe := filepath.Join(dockerBuild(t).dir, "healthcheck")

	root := t.TempDir()
	procs := map[string]*deployProc{}
	// Addresses that exist only in the compose network (a node's id may
	// be its host name, so only host:port is foreign).
	foreign := []string{"0.0.0.0", ":7400", ":7401", ":7402"}
	for _, name := range names {
		foreign = append(foreign, cf.Services[name].Hostname+":")
	}
	for _, name := range names {
		procs[name] = newDeployProc(t, root, name)
	}
	var pairs []string // every node's name and ports, as --join lists them
	for _, name := range names {
		pairs = append(pairs, procs[name].portPairs(cf.Services[name].Hostname)...)
	}
	ids := map[string]string{}
	for _, name := range names {
		s, p := cf.Services[name], procs[name]
		// Inside its container a node's own ports are also at 0.0.0.0
		// (what it binds) and 127.0.0.1 (what its health check asks).
		p.sub = strings.NewReplacer(append(append(slices.Clone(pairs), p.portPairs("0.0.0.0", "127.0.0.1")...), dataDir, p.dir)...)

		if s.Hostname != name {
			t.Errorf("service %s: hostname %q, want the service's name (the others --join it by that)", name, s.Hostname)
		}
		id := flagValue(s.Command, "--node-id")
		if id == "" || ids[id] != "" {
			t.Errorf("service %s: --node-id %q: want one, distinct from %v", name, id, ids)
		}
		ids[id] = name
		if got := flagValue(s.Command, "--bootstrap-expect"); got != "3" {
			t.Errorf("service %s: --bootstrap-expect %q, want 3", name, got)
		}
		join := strings.Split(flagValue(s.Command, "--join"), ",")
		for _, other := range names {
			if other != name && !slices.Contains(join, cf.Services[other].Hostname+":7400") {
				t.Errorf("service %s: --join %q does not list %s", name, join, other)
			}
		}
		if !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+dataDir) }) {
			t.Errorf("service %s: volumes %q do not mount the data dir %s", name, s.Volumes, dataDir)
		}

		env := map[string]string{}
		for k, v := range img.env {
			env[k] = v
		}
		// env_file names the operator's copy of the committed example.
		if s.EnvFile == "" {
			t.Fatalf("service %s: no env_file with the tokens", name)
		}
		fileEnv := readEnvFile(t, filepath.Join(deployDir, s.EnvFile+".example"))
		for _, k := range []string{"SWITCHBOARD_ADMIN_TOKEN", "SWITCHBOARD_CLUSTER_TOKEN"} {
			if fileEnv[k] == "" {
				t.Errorf("%s.example sets no %s", s.EnvFile, k)
			}
		}
		for k, v := range fileEnv {
			env[k] = v
		}
		for k, v := range s.Environment {
			env[k] = v
		}
		argv, envv := p.substitute(t, append(slices.Clone(img.entrypoint), s.Command...), env, foreign...)
		argv[0] = bin
		p.startExact(t, argv, envv)
	}

	leaders := map[string]bool{}
	for _, name := range names {
		p := procs[name]
		r := waitReady(t, p)
		leaders[r.Leader] = true
		// The compose file's own health check, run as Docker would.
		hc := cf.Services[name].Healthcheck.Test
		if len(hc) < 2 || hc[0] != "CMD" {
			t.Fatalf("service %s: healthcheck %q: want [CMD, probe, URL] (the image has no shell for CMD-SHELL)", name, hc)
		}
		hargv, _ := p.substitute(t, hc[1:], nil, foreign...)
		if filepath.Base(hargv[0]) != "healthcheck" || !strings.HasSuffix(hargv[len(hargv)-1], "/readyz") {
			t.Errorf("service %s: healthcheck %q: want the image's probe of /readyz", name, hc)
		}
		hargv[0] = probe
		if out, err := exec.Command(hargv[0], hargv[1:]...).CombinedOutput(); err != nil {
			t.Errorf("service %s: healthcheck %q on a ready node: %v\n%s", name, hargv, err, out)
		}
	}
	if len(leaders) != 1 || leaders[""] {
		t.Errorf("the nodes name leaders %v, want one cluster with one leader", leaders)
	}
	// The probe must also fail when it should: a node that is gone.
	stopped := procs[names[0]]
	stopped.kill()
	if err := exec.Command(probe, "http://"+stopped.http+"/readyz").Run(); err == nil {
		t.Errorf("healthcheck of a killed node exited 0")
	}
}

// flagValue is the value following flag in args ("" if absent).
func flagValue(args []string, flag string) string {
	for i, a := range args {
		if a == flag && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, flag+"="); ok {
			return v
		}
	}
	return ""
}

// systemdUnit is the part of deploy/switchboard.service the test runs.
type systemdUnit struct {
	execStart   []string
	envFile     string
	environment map[string]string
	keys        map[string][]string // every Key=value, by key
}

func parseUnit(t *testing.T) systemdUnit {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "switchboard.service"))
	if err != nil {
		t.Fatal(err)
	}
	u := systemdUnit{environment: map[string]string{}, keys: map[string][]string{}}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("switchboard.service: %q is not Key=value", line)
		}
		u.keys[k] = append(u.keys[k], v)
		switch k {
		case "ExecStart":
			if strings.ContainsAny(v, `"'$%\`) {
				t.Fatalf("ExecStart=%s: quoting, variables and specifiers are beyond this test's reading of it", v)
			}
			u.execStart = strings.Fields(v)
		case "EnvironmentFile":
			u.envFile = v
		case "Environment":
			ek, ev, _ := strings.Cut(v, "=")
			u.environment[ek] = ev
		}
	}
	return u
}

func TestDeploySystemdUnitIsHardened(t *testing.T) {
	u := parseUnit(t)
	want := map[string]string{
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"Restart": "on-failure", "EnvironmentFile": "/etc/switchboard/switchboard.env", "StateDirectory": "switchboard",
	}
	for k, v := range want {
		if !slices.Contains(u.keys[k], v) {
			t.Errorf("%s=%q, want %s", k, u.keys[k], v)
		}
	}
	if !slices.Contains(u.keys["DynamicUser"], "yes") && len(u.keys["User"]) == 0 {
		t.Errorf("neither DynamicUser=yes nor a dedicated User=")
	}
	if got := flagValue(u.execStart, "--data"); got != "/var/lib/"+u.keys["StateDirectory"][0] {
		t.Errorf("ExecStart --data %q is not the StateDirectory, the only place ProtectSystem=strict lets it write", got)
	}
}

func TestDeploySystemdUnitServesAsASingleNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a process")
	}
	u := parseUnit(t)
	if len(u.execStart) < 2 || u.execStart[1] != "serve" {
		t.Fatalf("ExecStart %q: want the switchboard serve command", u.execStart)
	}
	if u.envFile != "/etc/switchboard/switchboard.env" {
		t.Fatalf("EnvironmentFile=%s", u.envFile)
	}
	env := readEnvFile(t, filepath.Join(deployDir, "switchboard.env.example"))
	for k, v := range u.environment {
		env[k] = v
	}
	// systemd gives a service a minimal PATH of its own.
	env["PATH"] = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin"
	dataDir := flagValue(u.execStart, "--data")
	p := newDeployProc(t, t.TempDir(), "unit")
	p.sub = strings.NewReplacer(append(p.portPairs("10.0.0.1"), dataDir, p.dir)...)
	argv, envv := p.substitute(t, u.execStart, env, "10.0.0.", dataDir)
	argv[0] = e2eBinary(t)
	p.startExact(t, argv, envv)
	r := waitReady(t, p)
	if r.Node != env["SWITCHBOARD_NODE_ID"] {
		t.Errorf("/readyz says node %q, want the env file's %q", r.Node, env["SWITCHBOARD_NODE_ID"])
	}
	// It serves clients: the admin token it generated into its data dir
	// (the example leaves the token empty) opens an admin session.
	if _, err := os.Stat(filepath.Join(p.dir, adminTokenFile)); err != nil {
		t.Fatalf("the single node generated no admin token: %v", err)
	}
	ctlOut, err := exec.Command(e2eBin, "ctl", "--addr", p.client, "--token-file", filepath.Join(p.dir, adminTokenFile), "status").CombinedOutput()
	if err != nil || !strings.Contains(string(ctlOut), env["SWITCHBOARD_NODE_ID"]) {
		t.Errorf("ctl status against the unit's node: %v\n%s", err, ctlOut)
	}
	// SIGTERM (systemctl stop) ends it cleanly.
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if !p.cmd.ProcessState.Success() {
			t.Errorf("serve exited %v on SIGTERM, want 0 (Restart=on-failure would restart a clean stop otherwise)", p.cmd.ProcessState)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("serve did not stop within TimeoutStopSec after SIGTERM")
	}
}
