package hostprep

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseFacts(t *testing.T) {
	out := `os=Debian GNU/Linux 12 (bookworm)
kernel=6.1.0-50-amd64
cgroupfs=cgroup2fs
cmdline=BOOT_IMAGE=/boot/vmlinuz root=UUID=x ro console=ttyS0
swaptotal=1048572
swapactive=1
fstabswap=0
default=1.24.4
golink=/usr/local/go/current/bin/go
toolchain=1.24.4 aaa archive=111 go=aaa 
goenv=1.24.4 GOPROXY=https://proxy.example,direct
goenv=1.24.4 GOSUMDB=sum.golang.org
toolchain=1.23.9 bbb archive=222 go=ccc 
toolchain=1.22.0 - archive=333 go=ddd 
limits=# Managed by Kiln: limits for PAM logins.
limits=* soft nofile 65536
limits=* hard nofile 65536
limits=root soft nofile 65536
sdlimits=[Manager]
sdlimits=DefaultLimitNOFILE=65536
sysctl=vm.swappiness 10
gocache=rw,nosuid,nodev,relatime,size=262144k,mode=700,uid=1000,gid=1000,inode64
`
	f := parseFacts(out)
	if f.OS != "Debian GNU/Linux 12 (bookworm)" || f.Kernel != "6.1.0-50-amd64" || !f.CgroupV2() {
		t.Errorf("system facts: %+v", f)
	}
	if f.SwapOff() || f.SwapTotalKiB != 1048572 {
		t.Errorf("swap facts: active %d fstab %d total %d", f.ActiveSwaps, f.FstabSwaps, f.SwapTotalKiB)
	}
	if tc := f.Toolchains["1.24.4"]; !tc.Intact() || tc.ArchiveSHA256 != "111" || tc.Env["GOPROXY"] != "https://proxy.example,direct" {
		t.Errorf("1.24.4 = %+v", tc)
	}
	if tc := f.Toolchains["1.23.9"]; tc.Intact() {
		t.Error("a toolchain whose bin/go changed reads as intact")
	}
	if tc := f.Toolchains["1.22.0"]; tc.Intact() {
		t.Error("a toolchain without bin/go reads as intact")
	}
	if f.NoFile != 65536 || f.NProc != 0 {
		t.Errorf("limits: nofile %d nproc %d", f.NoFile, f.NProc)
	}
	if f.Sysctls["vm.swappiness"] != "10" || f.Default != "1.24.4" {
		t.Errorf("sysctls %v default %q", f.Sysctls, f.Default)
	}
	if f.GoCacheTmpfsMiB != 256 {
		t.Errorf("GOCACHE tmpfs = %d MiB, want 256", f.GoCacheTmpfsMiB)
	}
	if parseFacts("gocache=\n").GoCacheTmpfsMiB != 0 {
		t.Error("a GOCACHE in fstab but not mounted reads as mounted")
	}
}

func TestLimitsThatDisagreeReadAsDrift(t *testing.T) {
	f := parseFacts("limits=* soft nofile 1024\nlimits=* hard nofile 65536\nsdlimits=DefaultLimitNOFILE=65536\n")
	if f.NoFile != -1 {
		t.Fatalf("NoFile = %d, want -1 for disagreeing limits", f.NoFile)
	}
}

func TestSpecValidate(t *testing.T) {
	good := Spec{Root: "/usr/local/go", Versions: []string{"1.24.4", "1.23.9"}, Default: "1.24.4",
		Env: map[string]string{"GOPROXY": "https://proxy.example"}, Sysctls: map[string]string{"vm.swappiness": "10"}, CgroupV2: "verify"}
	if err := good.Validate(); err != nil {
		t.Fatalf("Validate(good) = %v", err)
	}
	for name, edit := range map[string]func(*Spec){
		"relative root":       func(s *Spec) { s.Root = "usr/local/go" },
		"root with ..":        func(s *Spec) { s.Root = "/usr/../etc" },
		"bad version":         func(s *Spec) { s.Versions = []string{"1.24.4; rm -rf /"} },
		"default undeclared":  func(s *Spec) { s.Default = "1.22.0" },
		"unmanaged env":       func(s *Spec) { s.Env = map[string]string{"GOROOT": "/x"} },
		"multi-line env":      func(s *Spec) { s.Env = map[string]string{"GOFLAGS": "a\nb"} },
		"bad sysctl":          func(s *Spec) { s.Sysctls = map[string]string{"vm.x; reboot": "1"} },
		"unknown cgroup mode": func(s *Spec) { s.CgroupV2 = "maybe" },
	} {
		s := good
		edit(&s)
		if err := s.Validate(); err == nil {
			t.Errorf("%s: Validate accepted it", name)
		}
	}
}

func TestGoEnvFileKeepsGoDefaults(t *testing.T) {
	got := goEnvFile(map[string]string{"GOPRIVATE": "git.example.com", "GOPROXY": "https://proxy.example"})
	for _, want := range []string{"GOPRIVATE=git.example.com\n", "GOPROXY=https://proxy.example\n", "GOSUMDB=sum.golang.org\n", "GOTOOLCHAIN=auto\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("go.env lacks %q:\n%s", want, got)
		}
	}
	f := parseFacts("toolchain=1.24.4 a archive=b go=a\n" + strings.ReplaceAll("\n"+strings.TrimPrefix(got, "# Managed by Kiln.\n"), "\n", "\ngoenv=1.24.4 "))
	if !sameEnv(f.Toolchains["1.24.4"].Env, map[string]string{"GOPRIVATE": "git.example.com", "GOPROXY": "https://proxy.example"}) {
		t.Errorf("go.env written by Kiln does not read back as the same settings: %v", f.Toolchains["1.24.4"].Env)
	}
}

// The facts script runs here, in this machine's bash, on a toolchain root the
// test lays out: bin/go's recorded hash stands while the file is untouched and
// is recomputed once it is rewritten.
func TestFactsScript(t *testing.T) {
	root := t.TempDir()
	recorded := strings.Repeat("a", 64) // not the real hash: proves it is reused
	goBin := layToolchain(t, root, "1.24.4", "111", recorded)
	if err := os.WriteFile(filepath.Join(root, "1.24.4", "go.env"), []byte("# Managed by Kiln.\nGOPROXY=off\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("1.24.4", filepath.Join(root, "current")); err != nil {
		t.Fatal(err)
	}
	facts := func() Facts {
		t.Helper()
		return parseFacts(runFactsScript(t, root, "", "kernel.pid_max"))
	}

	f := facts()
	tc := f.Toolchains["1.24.4"]
	if tc.GoSHA256 != recorded || !tc.Intact() || tc.Env["GOPROXY"] != "off" {
		t.Errorf("untouched toolchain = %+v, want the recorded hash and GOPROXY=off", tc)
	}
	if f.Default != "1.24.4" || f.Kernel == "" || f.GOOS != "linux" || f.Arch == "" || f.CgroupFS == "" || f.Sysctls["kernel.pid_max"] == "" {
		t.Errorf("facts = %+v", f)
	}

	if err := os.WriteFile(goBin, []byte("tampered"), 0o755); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte("tampered"))
	if tc := facts().Toolchains["1.24.4"]; tc.GoSHA256 != hex.EncodeToString(sum[:]) || tc.Intact() {
		t.Errorf("rewritten bin/go reads as %+v, want its new hash", tc)
	}
}

// layToolchain lays out root/version as scripts/install.sh leaves it: a
// bin/go, and Kiln's marker recording archive, recordedGo as bin/go's hash and
// bin/go's inode, size and change time. It returns bin/go's path.
func layToolchain(t *testing.T, root, version, archive, recordedGo string) string {
	t.Helper()
	dir := filepath.Join(root, version)
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	goBin := filepath.Join(dir, "bin", "go")
	if err := os.WriteFile(goBin, []byte("genuine"), 0o755); err != nil {
		t.Fatal(err)
	}
	fp, err := exec.Command("stat", "-c", "%i:%s:%.9Z", goBin).Output()
	if err != nil {
		t.Fatal(err)
	}
	marker := "archive=" + archive + " go=" + recordedGo + " stat=" + strings.TrimSpace(string(fp)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, markerName), []byte(marker), 0o644); err != nil {
		t.Fatal(err)
	}
	return goBin
}

// runFactsScript runs scripts/facts.sh here as Kiln runs it on a host.
func runFactsScript(t *testing.T, root, cacheUser string, sysctls ...string) string {
	t.Helper()
	args := append([]string{"-c", factsScript, "kiln", root, markerName, limitsPath, systemdLimitsPath, cacheUser}, sysctls...)
	out, err := exec.Command("bash", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("facts script: %v\n%s", err, out)
	}
	return string(out)
}

func TestFactsScriptKeepsBadUserNamesOutOfEval(t *testing.T) {
	pwned := filepath.Join(t.TempDir(), "pwned")
	runFactsScript(t, t.TempDir(), "x; touch "+pwned)
	if _, err := os.Stat(pwned); err == nil {
		t.Error("an invalid GOCACHE user name ran as a command")
	}
	runFactsScript(t, t.TempDir(), "root") // a valid name is looked up without error
}

func TestLimitsReadPerFile(t *testing.T) {
	f := parseFacts("limits=* soft nofile 1024\nlimits=* hard nofile 1024\nsdlimits=DefaultLimitNOFILE=65536\nsdlimits=DefaultLimitNPROC=4096\n")
	if f.LoginLimits != (Limits{NoFile: 1024}) || f.ServiceLimits != (Limits{NoFile: 65536, NProc: 4096}) {
		t.Errorf("login %+v, service %+v", f.LoginLimits, f.ServiceLimits)
	}
	if f.NoFile != -1 || f.NProc != -1 {
		t.Errorf("NoFile %d NProc %d, want -1 for files that disagree", f.NoFile, f.NProc)
	}
}
