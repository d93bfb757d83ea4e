package cloudinit

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"sigs.k8s.io/yaml"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

func TestUserDataMergesExtraAndSetsKilnKeys(t *testing.T) {
	key, err := remote.NewHostKey()
	if err != nil {
		t.Fatal(err)
	}
	c := Config{
		Hostname:          "builder-1",
		SSHAuthorizedKeys: []string{"ssh-ed25519 AAAA default"},
		Users:             []User{{Name: "ci", Sudo: true, SSHAuthorizedKeys: []string{"ssh-ed25519 AAAA ci"}}},
		ExtraUserData:     "packages: [git]\nhostname: overridden-by-kiln\n",
	}
	out, err := c.UserData(key)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(out), "#cloud-config\n") {
		t.Fatalf("user-data does not start with #cloud-config:\n%s", out)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(out, &doc); err != nil {
		t.Fatal(err)
	}
	if doc["hostname"] != "builder-1" {
		t.Errorf("hostname = %v, want builder-1", doc["hostname"])
	}
	if pk, _ := doc["packages"].([]any); len(pk) != 1 || pk[0] != "git" {
		t.Errorf("packages from user_data lost: %v", doc["packages"])
	}
	keys, _ := doc["ssh_keys"].(map[string]any)
	if keys["ed25519_public"] != key.Public || keys["ed25519_private"] != key.PrivatePEM {
		t.Errorf("ssh_keys = %v, want the generated host key", keys)
	}
	users, _ := doc["users"].([]any)
	if len(users) != 2 || users[0] != "default" {
		t.Fatalf("users = %v, want default then ci", users)
	}
	ci, _ := users[1].(map[string]any)
	if ci["name"] != "ci" || ci["sudo"] != "ALL=(ALL) NOPASSWD:ALL" {
		t.Errorf("user ci = %v", ci)
	}
}

func TestUserDataRejectsInvalidYAML(t *testing.T) {
	_, err := Config{ExtraUserData: "a: [unclosed"}.UserData(remote.HostKey{})
	if err == nil || !strings.Contains(err.Error(), "user_data") {
		t.Fatalf("err = %v, want an error naming user_data", err)
	}
}

func TestSeedISOHasNoCloudLayout(t *testing.T) {
	iso, err := SeedISO([]byte("#cloud-config\n"), []byte("instance-id: i-1\n"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The primary volume descriptor is sector 16; its volume identifier is at byte 40.
	pvd := iso[16*2048:]
	if got := strings.Trim(string(pvd[40:72]), " \x00"); !strings.EqualFold(got, "cidata") {
		t.Fatalf("volume identifier = %q, want cidata", got)
	}
	path := filepath.Join(t.TempDir(), "seed.iso")
	if err := os.WriteFile(path, iso, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := diskfs.Open(path, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	fs, err := d.GetFilesystem(0)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"/user-data": "#cloud-config\n", "/meta-data": "instance-id: i-1\n"} {
		f, err := fs.OpenFile(name, os.O_RDONLY)
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		got, err := io.ReadAll(f)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}
