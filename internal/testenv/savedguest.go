package testenv

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// ErrNoSavedGuest is Restore's answer for a slot that holds no saved guest yet.
var ErrNoSavedGuest = errors.New("no saved guest in this slot")

// GuestSlot is a place in the cache for one guest saved just after its first
// boot: its memory (libvirt's save image), its volumes and the files the test
// harness needs with it (its login key). Under software emulation a boot takes
// one to three minutes; a restore takes seconds. Test processes running side
// by side claim a slot each: a lock held until Release.
type GuestSlot struct {
	bed  LibvirtBed
	dir  string
	lock *os.File
}

// maxGuestSlots bounds the slots per kind of guest: one per guest a test
// process keeps at once, times the processes running side by side.
const maxGuestSlots = 8

// ClaimGuestSlot locks the first free slot for guests made to spec (the
// caller's own description of the VM: size, interfaces, seed). A slot's saved
// guest is only restored on the same base image, domain type and hypervisor
// version, since a save image is only good for those.
func (b LibvirtBed) ClaimGuestSlot(spec string) (*GuestSlot, error) {
	hypervisor, err := b.virsh("version")
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{spec, filepath.Base(b.BaseImage), b.Pool, b.BaseVolume, b.DomainType, hypervisor}, "\n")))
	key := hex.EncodeToString(sum[:8])
	root := filepath.Join(CacheDir(), "guest-states")
	pruneGuestStates(root, key)
	for i := range maxGuestSlots {
		dir := filepath.Join(root, key, fmt.Sprintf("slot-%d", i))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			now := time.Now()
			_ = os.Chtimes(filepath.Join(root, key), now, now)
			return &GuestSlot{bed: b, dir: dir, lock: lock}, nil
		}
		lock.Close()
	}
	return nil, fmt.Errorf("all %d guest slots in %s are in use", maxGuestSlots, filepath.Join(root, key))
}

// pruneGuestStates removes the saved guests of other images or hypervisors
// once they have gone unused for two days: each is a gigabyte or so.
func pruneGuestStates(root, keep string) {
	entries, _ := os.ReadDir(root)
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || e.Name() == keep || time.Since(info.ModTime()) < 48*time.Hour {
			continue
		}
		_ = os.RemoveAll(filepath.Join(root, e.Name()))
	}
}

// Release unlocks the slot for another process.
func (s *GuestSlot) Release() {
	if s != nil && s.lock != nil {
		s.lock.Close()
		s.lock = nil
	}
}

// The files of a saved guest in its slot.
const (
	savedState  = "state"   // libvirt's save image: the memory and the domain's XML
	savedName   = "name"    // the domain's name
	savedVolume = "volumes" // the names of its volumes, one a line
	savedFiles  = "files"   // the caller's files, copied back into its directory
)

// Save saves the running domain name into the slot with its volumes and the
// caller's files, and resumes it: it is stopped for a few seconds. The slot
// takes the new save only once all of it is written.
func (s *GuestSlot) Save(name string, volumes, files []string) error {
	poolDir, err := s.bed.poolDir()
	if err != nil {
		return err
	}
	next := s.dir + ".new"
	_ = os.RemoveAll(next)
	if err := os.MkdirAll(filepath.Join(next, savedFiles), 0o700); err != nil {
		return err
	}
	defer os.RemoveAll(next)
	state := filepath.Join(next, savedState)
	if _, err := s.bed.virsh("save", name, state, "--bypass-cache"); err != nil {
		return err
	}
	copyErr := saveFiles(next, poolDir, name, volumes, files)
	_, resumeErr := s.bed.virsh("restore", state)
	if resumeErr == nil {
		resumeErr = s.bed.syncGuestClock(name)
	}
	if err := errors.Join(copyErr, resumeErr); err != nil {
		return err
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	return os.Rename(next, s.dir)
}

// saveFiles copies a stopped guest's volumes and the caller's files into dir,
// with the lists Restore reads back.
func saveFiles(dir, poolDir, name string, volumes, files []string) error {
	for _, vol := range volumes {
		if err := copySparse(filepath.Join(poolDir, vol), filepath.Join(dir, vol)); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := copySparse(f, filepath.Join(dir, savedFiles, filepath.Base(f))); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, savedVolume), []byte(strings.Join(volumes, "\n")), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, savedName), []byte(name), 0o600)
}

// hostfwd is the SSH port forward of a user-mode interface in a domain's XML.
var hostfwd = regexp.MustCompile(`hostfwd=tcp:127\.0\.0\.1:\d+-:22`)

// Restore brings the slot's saved guest back, running, under its saved name
// with a fresh SSH port, its clock set to now, and copies the caller's saved
// files into filesDir. It returns the domain's name.
func (s *GuestSlot) Restore(filesDir string) (string, error) {
	name, volumes, err := s.saved()
	if err != nil {
		return "", err
	}
	// What a killed process left under this slot's name is this slot's.
	s.bed.removeGuest(name, volumes)
	poolDir, err := s.bed.poolDir()
	if err != nil {
		return "", err
	}
	for _, vol := range volumes {
		if err := copySparse(filepath.Join(s.dir, vol), filepath.Join(poolDir, vol)); err != nil {
			return "", err
		}
	}
	if _, err := s.bed.virsh("pool-refresh", s.bed.Pool); err != nil {
		return "", err
	}
	state := filepath.Join(s.dir, savedState)
	xml, err := s.bed.virsh("save-image-dumpxml", state)
	if err != nil {
		return "", err
	}
	port, err := FreeLocalPort()
	if err != nil {
		return "", err
	}
	xmlFile := filepath.Join(filesDir, name+".xml")
	if err := os.WriteFile(xmlFile, []byte(hostfwd.ReplaceAllString(xml, fmt.Sprintf("hostfwd=tcp:127.0.0.1:%d-:22", port))), 0o600); err != nil {
		return "", err
	}
	files, err := os.ReadDir(filepath.Join(s.dir, savedFiles))
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if err := copySparse(filepath.Join(s.dir, savedFiles, f.Name()), filepath.Join(filesDir, f.Name())); err != nil {
			return "", err
		}
	}
	// Defined first, the restored domain is persistent, as the VMs Kiln
	// creates are.
	if err := s.bed.restoreDomain(name, state, xmlFile); err != nil {
		s.bed.removeGuest(name, volumes)
		return "", err
	}
	return name, nil
}

// restoreDomain defines the domain from xmlFile, restores it from state and
// sets its clock.
func (b LibvirtBed) restoreDomain(name, state, xmlFile string) error {
	if _, err := b.virsh("define", xmlFile); err != nil {
		return err
	}
	if _, err := b.virsh("restore", state, "--xml", xmlFile); err != nil {
		return err
	}
	return b.syncGuestClock(name)
}

// Discard removes the guest Restore brought back, for a caller that found it
// unusable; the slot keeps its saved state for the next Save to replace.
func (s *GuestSlot) Discard() {
	if name, volumes, err := s.saved(); err == nil {
		s.bed.removeGuest(name, volumes)
	}
}

// saved is the name and volumes of the slot's saved guest.
func (s *GuestSlot) saved() (string, []string, error) {
	name, err := os.ReadFile(filepath.Join(s.dir, savedName))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil, ErrNoSavedGuest
	}
	if err != nil {
		return "", nil, err
	}
	volumes, err := os.ReadFile(filepath.Join(s.dir, savedVolume))
	if err != nil {
		return "", nil, err
	}
	return string(name), strings.Fields(string(volumes)), nil
}

// syncGuestClock sets a restored guest's clock to now through its agent: it
// stopped at the save.
func (b LibvirtBed) syncGuestClock(name string) error {
	var err error
	for range 30 {
		if _, err = b.virsh("domtime", name, "--now"); err == nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("set the clock of restored guest %s: %w", name, err)
}

// removeGuest removes the domain name and its volumes, where they exist.
func (b LibvirtBed) removeGuest(name string, volumes []string) {
	if _, err := b.virsh("dominfo", name); err == nil {
		_, _ = b.virsh("destroy", name)
		_, _ = b.virsh("undefine", name)
	}
	for _, vol := range volumes {
		_, _ = b.virsh("vol-delete", vol, "--pool", b.Pool)
	}
}

var poolPath = regexp.MustCompile(`<path>([^<]+)</path>`)

// poolDir is the directory of the test bed's storage pool.
func (b LibvirtBed) poolDir() (string, error) {
	xml, err := b.virsh("pool-dumpxml", b.Pool)
	if err != nil {
		return "", err
	}
	m := poolPath.FindStringSubmatch(xml)
	if m == nil {
		return "", fmt.Errorf("pool %s has no target path", b.Pool)
	}
	return m[1], nil
}

// virsh runs virsh against the test bed's libvirtd and returns its output.
func (b LibvirtBed) virsh(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "virsh", append([]string{"-q", "-c", b.URI}, args...)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("virsh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// copySparse copies a file, keeping a disk image's holes.
func copySparse(from, to string) error {
	if out, err := exec.Command("cp", "--sparse=always", from, to).CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s: %w: %s", from, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// FreeLocalPort is a TCP port free on 127.0.0.1 now.
func FreeLocalPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
