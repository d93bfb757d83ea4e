package gotoolchain

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// Artifact is a verified toolchain archive (a go<version>.<os>-<arch>.tar.gz
// with a top-level go/ directory) in the cache.
type Artifact struct {
	Version  string `json:"version"` // "1.24.4"
	OS       string `json:"os"`
	Arch     string `json:"arch"`
	Path     string `json:"-"`
	SHA256   string `json:"sha256"` // of the archive at Path
	Size     int64  `json:"size"`
	Source   string `json:"source"`   // where it came from
	Evidence string `json:"evidence"` // what it was verified against
}

// Cache holds verified archives by content hash, with an index from the
// (source, version, platform) key to the hash. Fills of one key are serialized
// across goroutines and processes by a lock file, so concurrent applies and many
// hosts fetch an archive from its origin once. Lookups share the lock: hosts
// served from the cache never queue behind one another, only behind a fill of
// their key, and nobody holds it while an archive streams to a host.
type Cache struct {
	Dir string
	// Ext ends the objects' names: ".tar.gz" (toolchain archives) when empty.
	Ext string
}

func (c *Cache) objectPath(sum string) string {
	ext := c.Ext
	if ext == "" {
		ext = ".tar.gz"
	}
	return filepath.Join(c.Dir, "objects", sum+ext)
}

func (c *Cache) indexPath(key string) string {
	h := sha256.Sum256([]byte(key))
	return filepath.Join(c.Dir, "index", hex.EncodeToString(h[:16])+".json")
}

// Get returns the artifact for key, calling fill to produce and verify it when
// the cache does not hold it. fill writes the archive to w and returns the
// artifact's description; Get records it only when fill succeeds, so a failed
// verification leaves nothing behind.
func (c *Cache) Get(key string, fill func(w io.Writer) (Artifact, error)) (Artifact, bool, error) {
	for _, dir := range []string{"objects", "index", "locks", "tmp"} {
		if err := os.MkdirAll(filepath.Join(c.Dir, dir), 0o755); err != nil {
			return Artifact{}, false, fmt.Errorf("toolchain cache: %w", err)
		}
	}
	if a, err := c.sharedLookup(key); err == nil {
		return a, true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, false, err
	}
	unlock, err := c.lock(key, true)
	if err != nil {
		return Artifact{}, false, err
	}
	defer unlock()
	// Another goroutine or process may have filled it while this one waited.
	if a, err := c.lookup(key); err == nil {
		return a, true, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return Artifact{}, false, err
	}

	tmp, err := os.CreateTemp(filepath.Join(c.Dir, "tmp"), "fill-*")
	if err != nil {
		return Artifact{}, false, fmt.Errorf("toolchain cache: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	counter := &countingWriter{}
	a, err := fill(io.MultiWriter(tmp, h, counter))
	if err != nil {
		return Artifact{}, false, err
	}
	if err := tmp.Sync(); err != nil {
		return Artifact{}, false, fmt.Errorf("toolchain cache: %w", err)
	}
	a.SHA256, a.Size = hex.EncodeToString(h.Sum(nil)), counter.n
	if err := os.Rename(tmp.Name(), c.objectPath(a.SHA256)); err != nil {
		return Artifact{}, false, fmt.Errorf("toolchain cache: %w", err)
	}
	entry, err := json.Marshal(a)
	if err != nil {
		return Artifact{}, false, err
	}
	if err := writeFileAtomic(c.indexPath(key), entry); err != nil {
		return Artifact{}, false, fmt.Errorf("toolchain cache: %w", err)
	}
	a.Path = c.objectPath(a.SHA256)
	return a, false, nil
}

// sharedLookup is lookup under the key's lock shared with other readers: it
// waits only for a fill in progress.
func (c *Cache) sharedLookup(key string) (Artifact, error) {
	unlock, err := c.lock(key, false)
	if err != nil {
		return Artifact{}, err
	}
	defer unlock()
	return c.lookup(key)
}

func (c *Cache) lookup(key string) (Artifact, error) {
	data, err := os.ReadFile(c.indexPath(key))
	if err != nil {
		return Artifact{}, err
	}
	var a Artifact
	if err := json.Unmarshal(data, &a); err != nil {
		return Artifact{}, fmt.Errorf("toolchain cache index for %s: %w", key, err)
	}
	a.Path = c.objectPath(a.SHA256)
	// The object must still be there. Its hash is checked by whoever reads it
	// (Artifact.Open), not here under the lock, where hosts would queue.
	info, err := os.Stat(a.Path)
	if err != nil {
		return Artifact{}, err
	}
	if info.Size() != a.Size {
		return Artifact{}, fmt.Errorf("toolchain cache object %s has %d bytes, want %d: %w", a.Path, info.Size(), a.Size, fs.ErrNotExist)
	}
	return a, nil
}

// lock takes the key's lock file, exclusively or shared with other readers,
// and returns its release.
func (c *Cache) lock(key string, exclusive bool) (func(), error) {
	name := filepath.Join(c.Dir, "locks", strings.TrimSuffix(filepath.Base(c.indexPath(key)), ".json")+".lock")
	f, err := os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("toolchain cache lock: %w", err)
	}
	if err := lockFile(f, exclusive); err != nil {
		f.Close()
		return nil, fmt.Errorf("toolchain cache lock: %w", err)
	}
	return func() {
		_ = unlockFile(f)
		f.Close()
	}, nil
}

type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
