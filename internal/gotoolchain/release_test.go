package gotoolchain

import "testing"

func TestResolve(t *testing.T) {
	releases := []Release{
		{Version: "go1.25rc1", Stable: false},
		{Version: "go1.24.4", Stable: true},
		{Version: "go1.24.10", Stable: true},
		{Version: "go1.23.12", Stable: true},
		{Version: "go1.20", Stable: true},
		{Version: "go1.20.1", Stable: true},
	}
	for request, want := range map[string]string{
		"1.24.4":  "1.24.4",
		"go1.24":  "1.24.10", // 10 > 4 numerically, not as text
		"1.20":    "1.20.1",
		"1.20.0":  "1.20",
		"stable":  "1.24.10",
		"1.23.12": "1.23.12",
	} {
		got, err := Resolve(request, releases)
		if err != nil || got != want {
			t.Errorf("Resolve(%q) = %q, %v; want %q", request, got, err, want)
		}
	}
	for _, bad := range []string{"1.99", "1.24.99", "latest", "1", "1.25rc1"} {
		if got, err := Resolve(bad, releases); err == nil {
			t.Errorf("Resolve(%q) = %q, want an error", bad, got)
		}
	}
}
