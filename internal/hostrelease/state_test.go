package hostrelease

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

const (
	digestA = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	digestB = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222"
)

func testSpec() Spec {
	return Spec{Name: "web", Artifact: Artifact{Version: "v2", URL: "http://x/web", SHA256: "sha256:" + digestB},
		Unit:        Unit{User: "web", Environment: map[string]string{"PORT": "8080"}, SecretEnv: map[string]string{"TOKEN": `a"b$c`}},
		ConfigFiles: map[string]string{"/etc/web/web.conf": "x=1\n"}, KeepReleases: 5}
}

func TestParseStateAndDrift(t *testing.T) {
	out := strings.Join([]string{
		"current releases/v1-aaaaaaaaaaaa",
		"previous releases/v0-cccccccccccc",
		"binary " + digestB,
		"active inactive",
		"enabled enabled",
		"release v0-cccccccccccc",
		"release v1-aaaaaaaaaaaa",
		"installed " + digestA + "  /opt/kiln/web/releases/v1-aaaaaaaaaaaa/web",
		"installed 0123  /etc/web/web.conf",
		"changed /opt/kiln/web/releases/v1-aaaaaaaaaaaa/web",
		"changed /etc/web/web.conf",
	}, "\n") + "\n"
	s, err := parseState(out)
	if err != nil {
		t.Fatal(err)
	}
	if s.Current != "v1-aaaaaaaaaaaa" || s.Previous != "v0-cccccccccccc" || s.Installed["/etc/web/web.conf"] != "0123" ||
		len(s.Releases) != 2 || !s.hasRelease("v0-cccccccccccc") {
		t.Fatalf("parsed %+v", s)
	}
	got := s.Drift("/opt/kiln/web", "v1-aaaaaaaaaaaa", digestA)
	want := []string{
		"the current binary has sha256 " + digestB + ", want " + digestA,
		"the unit is inactive, not active",
		"/etc/web/web.conf was changed or removed",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("drift\n got %q\nwant %q", got, want)
	}
	if got := (HostState{}).Drift("/opt/kiln/web", "v1", digestA); !slices.Equal(got, []string{"not released"}) {
		t.Fatalf("an empty host drifts as %q", got)
	}
	// An active unit that fails its probe, and a data directory gone.
	sick, err := parseState("current releases/v1-aaaaaaaaaaaa\nbinary " + digestA + "\nactive active\nenabled enabled\n" +
		"nodata /var/lib/web\nhealth unhealthy: tcp port 8080: connection failed\n")
	if err != nil {
		t.Fatal(err)
	}
	got = sick.Drift("/opt/kiln/web", "v1-aaaaaaaaaaaa", digestA)
	want = []string{"the health check fails: tcp port 8080: connection failed", "data directory /var/lib/web is missing"}
	if !slices.Equal(got, want) || sick.Health != "unhealthy: tcp port 8080: connection failed" {
		t.Fatalf("drift\n got %q\nwant %q (health %q)", got, want, sick.Health)
	}
	if _, err := parseState("surprise 1\n"); err == nil {
		t.Fatal("an unknown line was accepted")
	}
	// A symlink switched by hand to somewhere else reads as its target.
	if s, _ := parseState("current /tmp/elsewhere\n"); s.Current != "/tmp/elsewhere" {
		t.Fatalf("current = %q", s.Current)
	}
}

// A host is in sync only when it runs the release with exactly the files
// this spec installs: a changed environment (even a secret one) is a change.
func TestInSync(t *testing.T) {
	spec := testSpec()
	synced := HostState{Current: spec.Artifact.Release(), BinarySHA256: digestB, Active: "active", Enabled: "enabled",
		Installed: spec.installed()}
	if !synced.inSync(spec) {
		t.Fatalf("not in sync: %q", synced.Drift(spec.installDir(), spec.Artifact.Release(), digestB))
	}
	rotated := testSpec()
	rotated.Unit.SecretEnv["TOKEN"] = "new"
	if synced.inSync(rotated) {
		t.Fatal("a rotated secret counts as in sync")
	}
	stopped := synced
	stopped.Active = "failed"
	if stopped.inSync(spec) {
		t.Fatal("a failed unit counts as in sync")
	}
	sick := synced
	sick.Health = "unhealthy: http GET / on port 8080: no answer within 2s"
	if sick.inSync(spec) {
		t.Fatal("an unhealthy unit counts as in sync")
	}
	if synced.Health = Healthy; !synced.inSync(spec) {
		t.Fatal("a healthy unit is not in sync")
	}
}

func TestUnitAndEnvironmentFile(t *testing.T) {
	spec := testSpec()
	spec.Unit.Limits = Limits{NOFILE: 65536, MemoryMax: "256M", CPUQuota: "50%"}
	spec.Unit.Environment["GREETING"] = `say "100%"`
	unit := spec.unitText()
	for _, want := range []string{
		"ExecStart=/opt/kiln/web/current/web\n", "User=web\n", "WorkingDirectory=/opt/kiln/web/current\n",
		`Environment="GREETING=say \"100%%\""` + "\n", `Environment="PORT=8080"` + "\n",
		"EnvironmentFile=/opt/kiln/web/web.env\n", "LimitNOFILE=65536\n", "MemoryMax=256M\n", "CPUQuota=50%\n",
		"WantedBy=multi-user.target\n",
	} {
		if !strings.Contains(unit, want) {
			t.Errorf("unit lacks %q:\n%s", want, unit)
		}
	}
	if strings.Contains(unit, "TOKEN") {
		t.Errorf("the unit shows a secret:\n%s", unit)
	}
	if got, want := envFileText(spec.Unit.SecretEnv), `TOKEN="a\"b\$c"`+"\n"; got != want {
		t.Errorf("environment file %q, want %q", got, want)
	}
	var paths []string
	for _, f := range spec.files() {
		paths = append(paths, f.path+" "+f.mode)
	}
	if want := []string{"/etc/systemd/system/web.service 0644", "/etc/web/web.conf 0640", "/opt/kiln/web/web.env 0600"}; !slices.Equal(paths, want) {
		t.Errorf("files %q, want %q", paths, want)
	}
	if r := spec.Artifact.Release(); r != "v2-bbbbbbbbbbbb" {
		t.Errorf("release %q", r)
	}
}

func TestChecks(t *testing.T) {
	for _, c := range []struct {
		check func(string) error
		good  []string
		bad   []string
	}{
		{CheckName, []string{"web", "api-v2", "a_b"}, []string{"", "Web", "../x", "a.service"}},
		{CheckVersion, []string{"1.2.3", "v2+build.7"}, []string{"", "a/b", "-x", "a b"}},
		{CheckSHA256, []string{digestA, "sha256:" + digestA}, []string{"abc", strings.ToUpper(digestA)}},
		{CheckEnvName, []string{"PORT", "_x1"}, []string{"1X", "A-B", ""}},
		{CheckUser, []string{"web", "svc_1"}, []string{"Root", "a b", ""}},
		{CheckFilePath, []string{"/etc/web.conf"}, []string{"etc/x", "/etc/../x", "/etc/"}},
	} {
		for _, g := range c.good {
			if err := c.check(g); err != nil {
				t.Errorf("%q refused: %v", g, err)
			}
		}
		for _, b := range c.bad {
			if c.check(b) == nil {
				t.Errorf("%q accepted", b)
			}
		}
	}
}

// A data directory is outside the install dir, which destroy removes whole.
func TestCheckDataDir(t *testing.T) {
	for dir, ok := range map[string]bool{
		"/var/lib/web": true, "/opt/kiln/webdata": true, "/": false, "var/lib/web": false, "/var/lib/web/": false,
		"/opt/kiln/web": false, "/opt/kiln/web/data": false, "/opt/kiln": false,
	} {
		if err := CheckDataDir("/opt/kiln/web", dir); (err == nil) != ok {
			t.Errorf("CheckDataDir(%q) = %v", dir, err)
		}
	}
}
