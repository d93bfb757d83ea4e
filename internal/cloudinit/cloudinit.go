// Package cloudinit renders cloud-init NoCloud data (user-data and meta-data) and
// packs it into the seed ISO (volume label "cidata") that guests read at first boot.
package cloudinit

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/disk"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"sigs.k8s.io/yaml"

	"github.com/kilnhq/terraform-provider-kiln/internal/remote"
)

// User is a login account cloud-init creates.
type User struct {
	Name              string   `json:"name"`
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
	Sudo              bool     `json:"sudo"`
	Shell             string   `json:"shell,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// Config is what Kiln puts into a guest's first boot.
type Config struct {
	Hostname string `json:"hostname,omitempty"`
	Users    []User `json:"users,omitempty"`
	// SSHAuthorizedKeys go to the image's default user.
	SSHAuthorizedKeys []string `json:"ssh_authorized_keys,omitempty"`
	// ExtraUserData is extra #cloud-config YAML; Kiln's own keys are set over it.
	ExtraUserData string `json:"user_data,omitempty"`
}

// UserData renders the #cloud-config document; the guest is given hostKey as its
// only SSH host key.
func (c Config) UserData(hostKey remote.HostKey) ([]byte, error) {
	doc := map[string]any{}
	if c.ExtraUserData != "" {
		if err := yaml.Unmarshal([]byte(c.ExtraUserData), &doc); err != nil {
			return nil, fmt.Errorf("user_data is not valid cloud-config YAML: %w", err)
		}
		if doc == nil {
			doc = map[string]any{}
		}
	}
	if c.Hostname != "" {
		doc["hostname"] = c.Hostname
		doc["preserve_hostname"] = false
		if _, set := doc["manage_etc_hosts"]; !set {
			// So the name resolves (sudo warns on every call otherwise).
			doc["manage_etc_hosts"] = true
		}
	}
	if len(c.SSHAuthorizedKeys) > 0 {
		doc["ssh_authorized_keys"] = c.SSHAuthorizedKeys
	}
	if len(c.Users) > 0 {
		users := []any{"default"}
		for _, u := range c.Users {
			entry := map[string]any{"name": u.Name, "lock_passwd": true}
			if len(u.SSHAuthorizedKeys) > 0 {
				entry["ssh_authorized_keys"] = u.SSHAuthorizedKeys
			}
			if u.Sudo {
				entry["sudo"] = "ALL=(ALL) NOPASSWD:ALL"
			}
			if u.Shell != "" {
				entry["shell"] = u.Shell
			}
			if len(u.Groups) > 0 {
				entry["groups"] = u.Groups
			}
			users = append(users, entry)
		}
		doc["users"] = users
	}
	if hostKey.PrivatePEM != "" {
		doc["ssh_deletekeys"] = true
		doc["ssh_keys"] = map[string]string{
			"ed25519_private": hostKey.PrivatePEM,
			"ed25519_public":  hostKey.Public,
		}
		// Generate nothing else: the given key is present, so ed25519 is skipped.
		doc["ssh_genkeytypes"] = []string{"ed25519"}
	}
	body, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("render user-data: %w", err)
	}
	return append([]byte("#cloud-config\n"), body...), nil
}

// MetaData renders the NoCloud meta-data document.
func MetaData(instanceID, hostname string) ([]byte, error) {
	md := map[string]string{"instance-id": instanceID}
	if hostname != "" {
		md["local-hostname"] = hostname
	}
	return yaml.Marshal(md)
}

// SeedISO packs user-data and meta-data into an ISO 9660 image with Rock Ridge
// names, labelled "cidata" as NoCloud expects. workDir holds scratch files only.
func SeedISO(userData, metaData []byte, workDir string) ([]byte, error) {
	scratch, err := os.MkdirTemp(workDir, "kiln-seed-")
	if err != nil {
		return nil, fmt.Errorf("seed ISO: %w", err)
	}
	defer os.RemoveAll(scratch)

	work := filepath.Join(scratch, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		return nil, fmt.Errorf("seed ISO: %w", err)
	}
	path := filepath.Join(scratch, "seed.iso")
	size := int64(1 << 20) // grown by Finalize as needed
	d, err := diskfs.Create(path, size, diskfs.SectorSizeDefault)
	if err != nil {
		return nil, fmt.Errorf("seed ISO: %w", err)
	}
	defer d.Close()
	d.LogicalBlocksize = 2048
	fs, err := d.CreateFilesystem(disk.FilesystemSpec{
		Partition:   0,
		FSType:      filesystem.TypeISO9660,
		VolumeLabel: "cidata",
		WorkDir:     work,
	})
	if err != nil {
		return nil, fmt.Errorf("seed ISO: %w", err)
	}
	for name, data := range map[string][]byte{"/user-data": userData, "/meta-data": metaData} {
		f, err := fs.OpenFile(name, os.O_CREATE|os.O_RDWR)
		if err != nil {
			return nil, fmt.Errorf("seed ISO %s: %w", name, err)
		}
		if _, err := f.Write(data); err != nil {
			return nil, fmt.Errorf("seed ISO %s: %w", name, err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("seed ISO %s: %w", name, err)
		}
	}
	iso, ok := fs.(*iso9660.FileSystem)
	if !ok {
		return nil, fmt.Errorf("seed ISO: unexpected file system %T", fs)
	}
	if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, Joliet: true, VolumeIdentifier: "cidata"}); err != nil {
		return nil, fmt.Errorf("seed ISO: %w", err)
	}
	out, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("seed ISO: %w", err)
	}
	return bytes.Clone(out), nil
}
