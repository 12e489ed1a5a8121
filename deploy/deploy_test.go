package deploy_test

import (
	"context"
	"debug/elf"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fitmate/commserver/config"
)

const (
	testSecret = "deploy-test-secret-0123456789abc" // 32 bytes
	testAPIKey = "deploy-test-service-key"
)

// configNames lists every environment variable config.Load reads.
func configNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	_, _ = config.Load(func(k string) string { names[k] = true; return "" })
	if !names["REDIS_URL"] || !names["PRESENCE_GRACE"] {
		t.Fatalf("config.Load read %d names; REDIS_URL or PRESENCE_GRACE missing", len(names))
	}
	return names
}

// serverEnv is a server service's environment as the container sees it:
// the image's ENV, then the compose file's, interpolated.
func serverEnv(t *testing.T, s service, runtime stage) map[string]string {
	t.Helper()
	env := runtime.env()
	vars := map[string]string{"JWT_SECRET": testSecret, "SERVICE_API_KEY": testAPIKey}
	for k, v := range s.Environment {
		env[k] = interpolate(t, v, vars)
	}
	return env
}

func TestCompose(t *testing.T) {
	c := readCompose(t)
	stages := readDockerfile(t)
	runtime := stages[len(stages)-1]
	names := configNames(t)

	var servers []string
	for name, s := range c.Services {
		if s.isServer() {
			servers = append(servers, name)
		}
	}
	slices.Sort(servers)
	if len(servers) < 2 {
		t.Fatalf("server services %v: the cluster needs two", servers)
	}
	for _, want := range []string{"mongodb", "redis", "nginx"} {
		if _, ok := c.Services[want]; !ok {
			t.Errorf("no %s service", want)
		}
	}

	for name, s := range c.Services {
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		if !s.isServer() {
			image, tag, _ := strings.Cut(s.Image, ":")
			if image == "" || tag == "" || tag == "latest" {
				t.Errorf("%s: image %q must be pinned to a version", name, s.Image)
			}
		}
		if name != "nginx" && len(s.Ports) > 0 {
			t.Errorf("%s publishes %v: only Nginx faces clients", name, s.Ports)
		}
		for dep, d := range s.DependsOn {
			if _, ok := c.Services[dep]; !ok {
				t.Errorf("%s depends on %s, which is not a service", name, dep)
			}
			if d.Condition != "service_healthy" {
				t.Errorf("%s waits for %s to be %q, want service_healthy", name, dep, d.Condition)
			}
		}
	}

	var subnets []netip.Prefix
	for _, n := range c.Networks {
		for _, cfg := range n.IPAM.Config {
			subnets = append(subnets, netip.MustParsePrefix(cfg.Subnet))
		}
	}
	for _, name := range servers {
		s := c.Services[name]
		if b, ok := s.Build.(string); !ok || b != "." {
			t.Errorf("%s: build %v, want the repository (.) and its Dockerfile", name, s.Build)
		}
		env := serverEnv(t, s, runtime)
		for k := range env {
			if !names[k] {
				t.Errorf("%s sets %s, which the server does not read", name, k)
			}
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: the server refuses its environment: %v", name, err)
		}
		if cfg.MongoURI == "" || cfg.RedisURL == "" {
			t.Errorf("%s runs without MONGODB_URI or REDIS_URL: a cluster needs both", name)
		}
		for _, u := range []string{cfg.MongoURI, cfg.RedisURL} {
			host := regexp.MustCompile(`^[a-z]+://(?:[^@/]*@)?([^:/]+)`).FindStringSubmatch(u)[1]
			if _, ok := c.Services[host]; !ok {
				t.Errorf("%s reaches %s, which is not a service", name, host)
			}
		}
		if _, ok := s.DependsOn["mongodb"]; !ok {
			t.Errorf("%s does not wait for mongodb", name)
		}
		if hc := strings.Join(s.Healthcheck.Test, " "); !strings.Contains(hc, "/readyz") {
			t.Errorf("%s's healthcheck %q does not ask /readyz", name, hc)
		} else if bin := s.Healthcheck.Test[1]; !copiedInto(runtime, bin) {
			t.Errorf("%s's healthcheck runs %s, which the image does not hold", name, bin)
		}
		trusted := false
		for _, p := range cfg.TrustedProxies {
			for _, sub := range subnets {
				trusted = trusted || p.Contains(sub.Addr()) && p.Bits() <= sub.Bits()
			}
		}
		if !trusted {
			t.Errorf("%s: TRUSTED_PROXIES %v does not cover the network %v Nginx is on", name, cfg.TrustedProxies, subnets)
		}
		grace, err := time.ParseDuration(s.StopGracePeriod)
		if err != nil || grace <= cfg.ShutdownTimeout+cfg.ShutdownDrainDelay {
			t.Errorf("%s: stop_grace_period %q must exceed SHUTDOWN_DRAIN_DELAY + SHUTDOWN_TIMEOUT (%s)", name,
				s.StopGracePeriod, cfg.ShutdownTimeout+cfg.ShutdownDrainDelay)
		}
	}

	// Nginx: mounts deploy/nginx.conf, waits for every pod, and its upstream
	// lists exactly the server services on the port they listen on.
	ng := c.Services["nginx"]
	if !slices.Contains(ng.Volumes, "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro") {
		t.Errorf("nginx volumes %v: want ./deploy/nginx.conf as /etc/nginx/nginx.conf", ng.Volumes)
	}
	conf := readNginx(t)
	var want []string
	for _, name := range servers {
		if _, ok := ng.DependsOn[name]; !ok {
			t.Errorf("nginx does not wait for %s", name)
		}
		env := serverEnv(t, c.Services[name], runtime)
		want = append(want, name+":"+env["PORT"])
	}
	for name, got := range conf.upstreams {
		got = slices.Clone(got)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("nginx upstream %s: %v, want the server services %v", name, got, want)
		}
	}
	if len(conf.upstreams) != 1 {
		t.Errorf("nginx upstreams %v: want one", conf.upstreams)
	}
}

// copiedInto reports whether the runtime stage copies bin into its image.
func copiedInto(s stage, bin string) bool {
	for _, in := range s.all("COPY") {
		fields := strings.Fields(in.args)
		dest := fields[len(fields)-1]
		for _, src := range fields[:len(fields)-1] {
			if strings.HasPrefix(src, "--") {
				continue
			}
			if dest+filepath.Base(src) == bin || dest == bin {
				return true
			}
		}
	}
	return false
}

func TestNginxConfig(t *testing.T) {
	conf := readNginx(t)
	cfg, err := config.Load(func(k string) string { return map[string]string{"JWT_SECRET": testSecret}[k] })
	if err != nil {
		t.Fatal(err)
	}
	for name := range conf.upstreams {
		body := conf.blocks["upstream "+name]
		if !regexp.MustCompile(`(?m)^\s*(ip_hash|hash\s|sticky)`).MatchString(body) {
			t.Errorf("upstream %s has no affinity (ip_hash): long-polling breaks across pods", name)
		}
	}
	sio, ok := conf.blocks["location /socket.io/"]
	if !ok {
		t.Fatal("no location /socket.io/")
	}
	if directive(sio, "proxy_set_header Upgrade") != "$http_upgrade" || !strings.Contains(directive(sio, "proxy_set_header Connection"), "upgrade") {
		t.Error("location /socket.io/ does not pass the WebSocket upgrade (Upgrade and Connection headers)")
	}
	if directive(conf.text, "proxy_http_version") != "1.1" {
		t.Error("proxy_http_version 1.1 is needed for WebSocket upgrades and keep-alive")
	}
	if !strings.Contains(conf.text, "X-Forwarded-For $proxy_add_x_forwarded_for") {
		t.Error("X-Forwarded-For not set: the server cannot rate-limit OTP by client address")
	}
	heartbeat := cfg.PingInterval + cfg.PingTimeout
	for _, d := range []string{"proxy_read_timeout", "proxy_send_timeout"} {
		v := directive(sio, d)
		if v == "" {
			t.Errorf("location /socket.io/ has no %s (Nginx's 60s default is too close to the heartbeat)", d)
			continue
		}
		if got := nginxDuration(t, v); got <= heartbeat {
			t.Errorf("%s %s: a long-poll or an idle WebSocket lasts up to %s (SOCKET_PING_INTERVAL + SOCKET_PING_TIMEOUT)", d, got, heartbeat)
		}
	}
	if got := nginxDuration(t, directive(conf.blocks["location /"], "proxy_read_timeout")); got <= cfg.HTTPWriteTimeout {
		t.Errorf("location / proxy_read_timeout %s: not longer than HTTP_WRITE_TIMEOUT %s", got, cfg.HTTPWriteTimeout)
	}

	// nginx -t on a copy whose upstream hosts are 127.0.0.1 (compose's
	// service names resolve only inside compose) and whose pid and temp
	// files are in a scratch directory.
	bin := nginxBinary(t)
	dir := t.TempDir()
	text := serverLine.ReplaceAllStringFunc(conf.text, func(m string) string {
		host, port, err := net.SplitHostPort(strings.Fields(m)[1])
		if err != nil {
			t.Fatalf("upstream server %q: want host:port", m)
		}
		_ = host
		return strings.Replace(m, strings.Fields(m)[1], "127.0.0.1:"+port, 1)
	})
	var temps strings.Builder
	for _, kind := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", kind, filepath.Join(dir, kind))
	}
	text = strings.Replace(text, "http {\n", "http {\n"+temps.String(), 1)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-t", "-p", dir, "-c", path, "-g", "pid "+filepath.Join(dir, "nginx.pid")+";").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "test is successful") {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}

// nginxBinary finds Debian's nginx. CI installs it (.ci/run); elsewhere the
// test is skipped with a note, unless CI is set.
func nginxBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("CI") != "" {
		t.Fatal("nginx is not installed: .ci/run installs Debian's nginx")
	}
	t.Skip("nginx is not installed (apt-get install nginx); CI runs this check")
	return ""
}

// The Dockerfile's stages, checked without a Docker engine: the build
// stage's own go build command is run here with its environment, and what
// it builds must be static and serve on the embedded store.
func TestDockerfile(t *testing.T) {
	stages := readDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("%d stages: want a build stage and a runtime stage", len(stages))
	}
	build, runtime := stages[0], stages[len(stages)-1]
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)[1]
	if !strings.HasPrefix(build.image, "golang:"+string(goVersion)) {
		t.Errorf("build stage FROM %s: want golang:%s (go.mod)", build.image, goVersion)
	}
	if build.env()["CGO_ENABLED"] != "0" {
		t.Error("the build stage does not set CGO_ENABLED=0: the binary would need a C library")
	}
	if !strings.Contains(runtime.image, "distroless/static") && runtime.image != "scratch" {
		t.Errorf("runtime FROM %s: want distroless/static (or scratch) for a static binary", runtime.image)
	}
	users := runtime.all("USER")
	if len(users) == 0 {
		t.Fatal("the runtime stage has no USER: it would run as root")
	}
	if u := strings.Fields(users[len(users)-1].args)[0]; u == "root" || u == "0" || strings.HasPrefix(u, "0:") {
		t.Errorf("USER %s: run as a non-root user", u)
	}
	for _, in := range runtime.all("COPY") {
		if !strings.Contains(in.args, "--from="+build.name) {
			t.Errorf("Dockerfile:%d: the runtime stage copies %q from outside the build stage", in.line, in.args)
		}
	}
	entry := runtime.all("ENTRYPOINT")
	if len(entry) != 1 || !copiedInto(runtime, strings.Trim(strings.Split(entry[0].args, ",")[0], `[]" `)) {
		t.Errorf("ENTRYPOINT %v: not a binary the image holds", entry)
	}
	hc := runtime.all("HEALTHCHECK")
	if len(hc) != 1 || !strings.Contains(hc[0].args, "/healthz") {
		t.Errorf("HEALTHCHECK %v: want one, on /healthz", hc)
	} else if bin := regexp.MustCompile(`CMD \["([^"]+)"`).FindStringSubmatch(hc[0].args); bin == nil || !copiedInto(runtime, bin[1]) {
		t.Errorf("HEALTHCHECK %q runs a binary the image does not hold", hc[0].args)
	}
	if testing.Short() {
		t.Skip("-short: not running the image's build")
	}

	// The build command, as the Dockerfile's shell would run it.
	var cmd string
	for _, in := range build.all("RUN") {
		if strings.Contains(in.args, "go build") {
			cmd = in.args
		}
	}
	if cmd == "" {
		t.Fatal("no go build in the build stage")
	}
	cmd = regexp.MustCompile(`--mount=\S+\s*`).ReplaceAllString(cmd, "")
	out := t.TempDir()
	if !strings.Contains(cmd, " -o /out/ ") {
		t.Fatalf("build command %q: want -o /out/ (the runtime stage copies from there)", cmd)
	}
	cmd = strings.Replace(cmd, " -o /out/ ", " -o "+out+"/ ", 1)
	c := exec.Command("sh", "-c", cmd)
	c.Dir = ".."
	c.Env = os.Environ()
	for k, v := range build.env() {
		c.Env = append(c.Env, k+"="+v)
	}
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	for _, bin := range []string{"commserver", "healthcheck"} {
		f, err := elf.Open(filepath.Join(out, bin))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Errorf("%s has a program interpreter: it is dynamically linked", bin)
			}
		}
		if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
			t.Errorf("%s needs %v", bin, libs)
		}
		f.Close()
	}

	// The static binary serves on the embedded store (FerretDB over SQLite
	// without cgo), and the image's health check sees it.
	port := freePort(t)
	srv := exec.Command(filepath.Join(out, "commserver"))
	srv.Env = []string{"JWT_SECRET=" + testSecret, "HOST=127.0.0.1", fmt.Sprintf("PORT=%d", port), "DATA_DIR=" + t.TempDir(), "LOG_LEVEL=warn"}
	logs := &strings.Builder{}
	srv.Stdout, srv.Stderr = logs, logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = srv.Process.Kill(); _ = srv.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if ctx.Err() != nil {
			t.Fatalf("the static binary is not ready in 60s:\n%s", logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	check := exec.Command(filepath.Join(out, "healthcheck"), "/readyz")
	check.Env = []string{fmt.Sprintf("PORT=%d", port)}
	if b, err := check.CombinedOutput(); err != nil {
		t.Fatalf("healthcheck /readyz: %v %s", err, b)
	}
	check = exec.Command(filepath.Join(out, "healthcheck"), "/nowhere")
	check.Env = []string{fmt.Sprintf("PORT=%d", port)}
	if err := check.Run(); err == nil {
		t.Fatal("healthcheck passed on a 404")
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
