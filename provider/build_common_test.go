package provider

import "testing"

func TestRegistryOf(t *testing.T) {
	for raw, want := range map[string]struct {
		host     string
		insecure bool
	}{
		"registry.example.com":          {"registry.example.com", false},
		"https://registry.example.com/": {"registry.example.com", false},
		"http://127.0.0.1:5000":         {"127.0.0.1:5000", true},
		"127.0.0.1:5000":                {"127.0.0.1:5000", false},
	} {
		got, err := registryOf(raw, false)
		if err != nil || got.Host != want.host || got.Insecure != want.insecure {
			t.Errorf("registryOf(%q) = %+v, %v; want %+v", raw, got, err, want)
		}
	}
	for _, bad := range []string{"ftp://x", "x/y", "", "https://"} {
		if _, err := registryOf(bad, false); err == nil {
			t.Errorf("registryOf(%q) took it", bad)
		}
	}
}
