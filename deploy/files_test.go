package deploy_test

import (
	"bufio"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Readers of the three files, shared by the tests.

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // FROM, RUN, ...
	args string
	line int
}

// stage is one FROM and what follows it.
type stage struct {
	image, name string
	instrs      []instruction
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var cur strings.Builder
	start, n := 0, 0
	flush := func() {
		text := strings.TrimSpace(cur.String())
		cur.Reset()
		if text == "" {
			return
		}
		cmd, args, _ := strings.Cut(text, " ")
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			fields := strings.Fields(in.args)
			s := stage{image: fields[0]}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			return
		}
		if len(stages) == 0 {
			t.Fatalf("Dockerfile:%d: %s before FROM", start, in.cmd)
		}
		stages[len(stages)-1].instrs = append(stages[len(stages)-1].instrs, in)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() == 0 {
			start = n
		} else if strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if body, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(body + " ")
			continue
		}
		cur.WriteString(line)
		flush()
	}
	flush()
	return stages
}

// env returns a stage's ENV settings.
func (s stage) env() map[string]string {
	out := map[string]string{}
	for _, in := range s.instrs {
		if in.cmd != "ENV" {
			continue
		}
		for _, kv := range strings.Fields(in.args) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				out[k] = strings.Trim(v, `"`)
			}
		}
	}
	return out
}

func (s stage) all(cmd string) []instruction {
	var out []instruction
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

// compose is what the tests read of docker-compose.yml.
type compose struct {
	Name     string             `yaml:"name"`
	Services map[string]service `yaml:"services"`
	Networks map[string]struct {
		IPAM struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

type service struct {
	Image       string            `yaml:"image"`
	Build       any               `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Ports       []string          `yaml:"ports"`
	Expose      []string          `yaml:"expose"`
	Volumes     []string          `yaml:"volumes"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test     []string `yaml:"test"`
		Interval string   `yaml:"interval"`
	} `yaml:"healthcheck"`
	StopGracePeriod string   `yaml:"stop_grace_period"`
	Networks        []string `yaml:"networks"`
}

func readCompose(t *testing.T) compose {
	t.Helper()
	raw, err := os.ReadFile("../docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(false) // x-* extension fields
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return c
}

// isServer reports whether the service runs the server (built from this repository).
func (s service) isServer() bool { return s.Build != nil }

var interpolation = regexp.MustCompile(`\$\{([A-Z0-9_]+)(?:(:\?|:-)([^}]*))?\}`)

// interpolate resolves ${VAR}, ${VAR:-default} and ${VAR:?error} as compose
// does, from vars; a required variable that is missing fails the test.
func interpolate(t *testing.T, s string, vars map[string]string) string {
	t.Helper()
	return interpolation.ReplaceAllStringFunc(s, func(m string) string {
		p := interpolation.FindStringSubmatch(m)
		v, set := vars[p[1]]
		switch {
		case set && v != "":
			return v
		case p[2] == ":-":
			return p[3]
		case p[2] == ":?":
			t.Fatalf("compose needs %s: %s", p[1], p[3])
		}
		return ""
	})
}

// nginxConf is what the tests read of nginx.conf.
type nginxConf struct {
	text      string
	upstreams map[string][]string // name → server host:port
	blocks    map[string]string   // "upstream NAME" or "location PATH" → its body
}

var (
	blockStart = regexp.MustCompile(`(?m)^\s*(upstream|location)\s+([^\s{]+)\s*\{`)
	serverLine = regexp.MustCompile(`(?m)^\s*server\s+([^\s;{]+)[^;{]*;`)
)

func readNginx(t *testing.T) nginxConf {
	t.Helper()
	raw, err := os.ReadFile("nginx.conf")
	if err != nil {
		t.Fatal(err)
	}
	c := nginxConf{text: string(raw), upstreams: map[string][]string{}, blocks: map[string]string{}}
	for _, m := range blockStart.FindAllStringSubmatchIndex(c.text, -1) {
		kind, name := c.text[m[2]:m[3]], c.text[m[4]:m[5]]
		end := strings.Index(c.text[m[1]:], "}")
		body := c.text[m[1] : m[1]+end]
		c.blocks[kind+" "+name] = body
		if kind == "upstream" {
			for _, s := range serverLine.FindAllStringSubmatch(body, -1) {
				c.upstreams[name] = append(c.upstreams[name], s[1])
			}
		}
	}
	return c
}

// directive returns the arguments of the first directive named name in block.
func directive(block, name string) string {
	re := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(name) + `\s+([^;]*);`)
	if m := re.FindStringSubmatch(block); m != nil {
		return strings.TrimSpace(m[1])
	}
	return ""
}

// nginxDuration reads an Nginx time ("75s", "2m", "75").
func nginxDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if n, err := strconv.Atoi(s); err == nil {
		return time.Duration(n) * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatalf("nginx time %q: %v", s, err)
	}
	return d
}
