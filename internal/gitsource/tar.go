package gitsource

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type entryKind int

const (
	kindFile entryKind = iota
	kindDir
	kindSymlink
)

// entry is one path of a source tree, as the tar stream records it.
type entry struct {
	name       string // slash-separated, relative
	kind       entryKind
	executable bool
	size       int64
	open       func() (io.ReadCloser, error) // content; a symlink's is its target
}

// writeTar writes entries (sorted by the caller) with every owner 0, every
// time mtime, and only the modes git knows: 0755 for directories and
// executables, 0644 for other files, 0777 for symlinks.
func writeTar(w io.Writer, entries []entry, mtime time.Time) error {
	tw := tar.NewWriter(w)
	mtime = mtime.Truncate(time.Second)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, ModTime: mtime, Mode: 0o644, Typeflag: tar.TypeReg, Size: e.size}
		switch {
		case e.kind == kindDir:
			hdr.Name, hdr.Mode, hdr.Typeflag, hdr.Size = e.name+"/", 0o755, tar.TypeDir, 0
		case e.kind == kindSymlink:
			target, err := readAll(e.open)
			if err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
			hdr.Mode, hdr.Typeflag, hdr.Size, hdr.Linkname = 0o777, tar.TypeSymlink, 0, string(target)
		case e.executable:
			hdr.Mode = 0o755
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if err := copyContent(tw, e); err != nil {
				return fmt.Errorf("%s: %w", e.name, err)
			}
		}
	}
	return tw.Close()
}

func copyContent(w io.Writer, e entry) error {
	rc, err := e.open()
	if err != nil {
		return err
	}
	defer func() { _ = rc.Close() }()
	n, err := io.Copy(w, rc)
	if err == nil && n != e.size {
		err = fmt.Errorf("changed while archived: %d bytes, expected %d", n, e.size)
	}
	return err
}

func readAll(open func() (io.ReadCloser, error)) ([]byte, error) {
	rc, err := open()
	if err != nil {
		return nil, err
	}
	defer func() { _ = rc.Close() }()
	return io.ReadAll(rc)
}

// DirEpoch is the time of every entry ArchiveDir writes: a directory has no
// commit time, and its files' times differ between checkouts.
var DirEpoch = time.Unix(0, 0).UTC()

// ArchiveDir writes the directory dir as Archive writes a commit's tree:
// sorted, modes reduced to what git records, owners 0, every time DirEpoch.
// .git directories are left out; sockets, devices and pipes are refused.
func ArchiveDir(dir string, w io.Writer) error {
	entries, err := dirEntries(dir)
	if err != nil {
		return err
	}
	if err := writeTar(w, entries, DirEpoch); err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	return nil
}

// HashDir returns "sha256:<hex>" of ArchiveDir's stream for dir: it changes
// exactly when a name, content, executable bit or link target does.
func HashDir(dir string) (string, error) {
	h := sha256.New()
	if err := ArchiveDir(dir, h); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

func dirEntries(dir string) ([]entry, error) {
	var entries []entry
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		if d.Name() == ".git" {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil // a worktree's or submodule's pointer file
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		e := entry{name: filepath.ToSlash(rel)}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch mode := info.Mode(); {
		case mode.IsDir():
			e.kind = kindDir
		case mode.IsRegular():
			e.kind, e.executable, e.size = kindFile, mode&0o111 != 0, info.Size()
			e.open = func() (io.ReadCloser, error) { return os.Open(path) }
		case mode&fs.ModeSymlink != 0:
			e.kind = kindSymlink
			e.open = func() (io.ReadCloser, error) {
				target, err := os.Readlink(path)
				return io.NopCloser(strings.NewReader(target)), err
			}
		default:
			return fmt.Errorf("%s: not a file, directory or symlink (%s)", path, mode.Type())
		}
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("archive %s: %w", dir, err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].name < entries[j].name })
	return entries, nil
}
