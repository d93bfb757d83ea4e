package gotool

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
)

func TestParseRequest(t *testing.T) {
	for _, s := range []string{"github.com/go-delve/delve/cmd/dlv@v1.27.2", "honnef.co/go/tools/cmd/staticcheck@latest"} {
		if _, err := ParseRequest(s); err != nil {
			t.Errorf("ParseRequest(%q): %v", s, err)
		}
	}
	for s, want := range map[string]string{
		"github.com/go-delve/delve/cmd/dlv":          "package path and a version",
		"github.com/go-delve/delve/cmd/dlv@":         "package path and a version",
		"@v1.2.3":                                    "package path and a version",
		"github.com/go-delve/delve/cmd/dlv@1.27.2":   "exact semantic version",
		"github.com/go-delve/delve/cmd/dlv@v1.27":    "exact semantic version",
		"github.com/go-delve/delve/cmd/dlv@master":   "exact semantic version",
		"-x/cmd/dlv@v1.0.0":                          "malformed import path",
		"github.com/go-delve/delve/cmd/dlv@v1.2.3 x": "exact semantic version",
	} {
		_, err := ParseRequest(s)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRequest(%q) = %v, want an error saying %q", s, err, want)
		}
	}
}

func TestName(t *testing.T) {
	for pkg, want := range map[string]string{
		"github.com/go-delve/delve/cmd/dlv":    "dlv",
		"honnef.co/go/tools/cmd/staticcheck":   "staticcheck",
		"github.com/example/tool/v2":           "tool",
		"github.com/example/tool/cmd/thing/v3": "thing",
	} {
		if got := (Tool{Package: pkg}).Name(); got != want {
			t.Errorf("Name of %s = %q, want %q", pkg, got, want)
		}
	}
}

func TestPickToolchain(t *testing.T) {
	versions := []string{"1.24.4", "1.25.1", "1.23.10"}
	for goLine, want := range map[string]string{"1.21": "1.25.1", "1.24": "1.25.1", "1.25.0": "1.25.1", "1.26.0": ""} {
		got, ok := PickToolchain(goLine, versions)
		if got != want || ok != (want != "") {
			t.Errorf("PickToolchain(%s) = %q, %v, want %q", goLine, got, ok, want)
		}
	}
	if got, _ := PickToolchain("1.24", []string{"1.24.4"}); got != "1.24.4" {
		t.Errorf("go 1.24 with 1.24.4 picked %q", got)
	}
}

// Resolve asks the real module proxy: the package's module is the longest
// prefix it knows, latest becomes a version, and the go line is read.
func TestResolve(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("asks the module proxy: set TF_ACC")
	}
	b := &Builder{Proxy: gotoolchain.ModuleProxy{}}
	tool, err := b.Resolve(context.Background(), Request{Package: "github.com/go-delve/delve/cmd/dlv", Version: "v1.27.2"})
	if err != nil {
		t.Fatal(err)
	}
	if tool.Module != "github.com/go-delve/delve" || tool.GoVersion != "1.25.0" || tool.Name() != "dlv" {
		t.Errorf("Resolve = %+v", tool)
	}
	latest, err := b.Resolve(context.Background(), Request{Package: "honnef.co/go/tools/cmd/staticcheck", Version: Latest})
	if err != nil || latest.Module != "honnef.co/go/tools" || latest.Version == Latest {
		t.Errorf("Resolve latest = %+v, %v", latest, err)
	}
	if _, err := b.Resolve(context.Background(), Request{Package: "github.com/go-delve/delve/cmd/dlv", Version: "v0.0.99"}); err == nil {
		t.Error("an unknown version resolved")
	}
}
