package gitsource_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/kilnhq/terraform-provider-kiln/internal/gitsource"
	"github.com/kilnhq/terraform-provider-kiln/internal/testenv"
)

// history is a repository on the test git server with four commits on main:
// first (no ref points at it afterwards); tagged (tags v1.0, annotated, and
// light, lightweight; the name "twin" is both a branch and a tag there);
// released (its only ref the annotated tag v2.0); and head.
type history struct {
	repo                                   gitsource.Repository
	first, tagged, released, head          string
	firstFiles, taggedFiles, releasedFiles map[string][]byte
}

func newHistory(t *testing.T) history {
	t.Helper()
	g := testenv.GitServer(t)
	r := g.NewRepo(t)
	h := history{repo: gitsource.Repository{URL: r.URL, Credentials: gitsource.Credentials{Username: g.Username, Password: g.Password}}}
	docs := map[string][]byte{"docs/README.md": []byte("# backend\n")}
	version := map[string][]byte{"VERSION": []byte("2.0\n")}
	h.firstFiles = testenv.SampleService(t)
	h.taggedFiles = merge(h.firstFiles, docs)
	h.releasedFiles = merge(h.taggedFiles, version)

	h.first = r.Commit(t, "the sample backend", h.firstFiles)
	h.tagged = r.Commit(t, "docs", docs)
	r.Tag(t, "v1.0", "release 1.0")
	r.Tag(t, "light", "")
	r.Tag(t, "twin", "")
	r.PushBranch(t, "twin")
	h.released = r.Commit(t, "version 2.0", version)
	r.Tag(t, "v2.0", "release 2.0")
	h.head = r.Commit(t, "back to the service alone", map[string][]byte{"docs/README.md": nil, "VERSION": nil})
	return h
}

func TestResolve(t *testing.T) {
	h := newHistory(t)
	ctx := context.Background()
	for _, tc := range []struct{ ref, name, commit string }{
		{"main", "refs/heads/main", h.head},
		{"refs/heads/main", "refs/heads/main", h.head},
		{"HEAD", "HEAD", h.head},
		{"v1.0", "refs/tags/v1.0", h.tagged}, // annotated: peeled to the commit
		{"light", "refs/tags/light", h.tagged},
		{"v2.0", "refs/tags/v2.0", h.released},
		{"refs/tags/twin", "refs/tags/twin", h.tagged},
		{h.first, "", h.first},
	} {
		start := time.Now()
		got, err := h.repo.Resolve(ctx, tc.ref)
		t.Logf("%s resolved in %v", tc.ref, time.Since(start).Round(time.Millisecond))
		if err != nil {
			t.Errorf("Resolve(%q): %v", tc.ref, err)
			continue
		}
		if got.Name != tc.name || got.Commit != tc.commit {
			t.Errorf("Resolve(%q) = %+v, want {%s %s}", tc.ref, got, tc.name, tc.commit)
		}
	}

	if _, err := h.repo.Resolve(ctx, "nope"); !errors.Is(err, gitsource.ErrUnknownRef) {
		t.Errorf("Resolve(nope) = %v, want ErrUnknownRef", err)
	}
	if _, err := h.repo.Resolve(ctx, "twin"); err == nil || !strings.Contains(err.Error(), "both a branch and a tag") {
		t.Errorf("Resolve(twin) = %v, want the ambiguity named", err)
	}
	wrong := h.repo
	wrong.Credentials.Password = "wrong"
	if _, err := wrong.Resolve(ctx, "main"); err == nil {
		t.Error("Resolve with a wrong password succeeded")
	}
}

func TestArchive(t *testing.T) {
	h := newHistory(t)
	ctx := context.Background()
	for _, tc := range []struct {
		what, commit string
		files        map[string][]byte
	}{
		{"branch tip", h.head, h.firstFiles},
		{"branch and tag tip", h.tagged, h.taggedFiles},
		{"annotated tag tip", h.released, h.releasedFiles},
		{"untipped commit", h.first, h.firstFiles},
	} {
		var first, second bytes.Buffer
		start := time.Now()
		c, err := h.repo.Archive(ctx, tc.commit, &first)
		if err != nil {
			t.Fatalf("%s: %v", tc.what, err)
		}
		t.Logf("%s: %d bytes in %v", tc.what, first.Len(), time.Since(start).Round(time.Millisecond))
		if c.Hash != tc.commit || c.Time.IsZero() {
			t.Errorf("%s: commit %+v", tc.what, c)
		}
		if _, err := h.repo.Archive(ctx, tc.commit, &second); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first.Bytes(), second.Bytes()) {
			t.Errorf("%s: two archives of one commit differ", tc.what)
		}
		got := readTar(t, first.Bytes(), c.Time)
		for name, content := range tc.files {
			if !bytes.Equal(got[name], content) {
				t.Errorf("%s: %s = %q, want %q", tc.what, name, got[name], content)
			}
		}
		if len(got) != len(tc.files) {
			t.Errorf("%s: %d files in the archive, want %d", tc.what, len(got), len(tc.files))
		}
	}

	unknown := strings.Repeat("ab", 20)
	if _, err := h.repo.Archive(ctx, unknown, io.Discard); err == nil || !strings.Contains(err.Error(), unknown) {
		t.Errorf("Archive of an unknown commit = %v, want an error naming it", err)
	}
}

// TestArchiveDir: a directory with the files of a commit archives to the same
// entries, modes and contents (times aside), and its hash follows content, not
// times.
func TestArchiveDir(t *testing.T) {
	h := newHistory(t)
	dir := t.TempDir()
	for name, content := range h.firstFiles {
		write(t, filepath.Join(dir, name), string(content), 0o600) // modes are reduced to git's
	}
	if err := os.MkdirAll(filepath.Join(dir, ".git", "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, ".git", "HEAD"), "ref: refs/heads/main\n", 0o644)

	var fromGit, fromDir bytes.Buffer
	if _, err := h.repo.Archive(context.Background(), h.head, &fromGit); err != nil {
		t.Fatal(err)
	}
	if err := gitsource.ArchiveDir(dir, &fromDir); err != nil {
		t.Fatal(err)
	}
	if a, b := headers(t, fromGit.Bytes()), headers(t, fromDir.Bytes()); a != b {
		t.Errorf("entries differ:\ngit:\n%s\ndirectory:\n%s", a, b)
	}
	if got := readTar(t, fromDir.Bytes(), gitsource.DirEpoch); len(got) != len(h.firstFiles) {
		t.Errorf("%d files, want %d (.git left out)", len(got), len(h.firstFiles))
	}

	base := hashDir(t, dir)
	if again := hashDir(t, dir); again != base {
		t.Errorf("hash changed between two runs: %s, %s", base, again)
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(dir, "main.go"), later, later); err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(dir, ".git", "HEAD"), "ref: refs/heads/other\n", 0o644)
	if got := hashDir(t, dir); got != base {
		t.Errorf("hash follows times or .git: %s, was %s", got, base)
	}
	for _, change := range []struct {
		what string
		do   func() error
	}{
		{"content", func() error { return os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n"), 0o644) }},
		{"executable bit", func() error { return os.Chmod(filepath.Join(dir, "main.go"), 0o755) }},
		{"new file", func() error { return os.WriteFile(filepath.Join(dir, "extra.txt"), nil, 0o644) }},
		{"symlink", func() error { return os.Symlink("main.go", filepath.Join(dir, "link")) }},
		{"rename", func() error { return os.Rename(filepath.Join(dir, "extra.txt"), filepath.Join(dir, "extra2.txt")) }},
	} {
		if err := change.do(); err != nil {
			t.Fatal(err)
		}
		got := hashDir(t, dir)
		if got == base {
			t.Errorf("hash unchanged after a %s change", change.what)
		}
		base = got
	}
	var withLink bytes.Buffer
	if err := gitsource.ArchiveDir(dir, &withLink); err != nil {
		t.Fatal(err)
	}
	if hdrs := headers(t, withLink.Bytes()); !strings.Contains(hdrs, "link -> main.go 777") || !strings.Contains(hdrs, "main.go 755") {
		t.Errorf("symlink or executable not recorded:\n%s", hdrs)
	}
}

func merge(sets ...map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range sets {
		maps.Copy(out, m)
	}
	return out
}

// readTar checks every header is normalised (owner 0, time mtime, sorted) and
// returns the regular files' contents.
func readTar(t *testing.T, b []byte, mtime time.Time) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	prev := ""
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Name <= prev {
			t.Errorf("%s after %s: not sorted", hdr.Name, prev)
		}
		prev = hdr.Name
		if !hdr.ModTime.Equal(mtime) || hdr.Uid != 0 || hdr.Gid != 0 || hdr.Uname != "" {
			t.Errorf("%s: time %v owner %d/%d %q, want %v and root", hdr.Name, hdr.ModTime, hdr.Uid, hdr.Gid, hdr.Uname, mtime)
		}
		if hdr.Typeflag == tar.TypeReg {
			content, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files[hdr.Name] = content
		}
	}
}

// headers lists name, link, mode and content hash of each entry, times aside.
func headers(t *testing.T, b []byte) string {
	t.Helper()
	var out strings.Builder
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out.String()
		}
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		name := hdr.Name
		if hdr.Linkname != "" {
			name += " -> " + hdr.Linkname
		}
		sum := sha256.Sum256(content)
		fmt.Fprintf(&out, "%s %o %x\n", name, hdr.Mode, sum[:8])
	}
}

func write(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func hashDir(t *testing.T, dir string) string {
	t.Helper()
	h, err := gitsource.HashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestResolve_sshCredentials: an SSH URL needs a key and a pinned host key
// before anything is dialled.
func TestResolve_sshCredentials(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	key := pem.EncodeToMemory(block)
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	hostKey := string(ssh.MarshalAuthorizedKey(signer.PublicKey()))
	const url = "ssh://git@127.0.0.1:1/team/backend.git"
	for _, tc := range []struct {
		creds gitsource.Credentials
		want  string // in the error
	}{
		{gitsource.Credentials{}, "needs a private key"},
		{gitsource.Credentials{SSHPrivateKey: key}, "host key pinned"},
		{gitsource.Credentials{SSHPrivateKey: key, SSHHostKey: "not a key"}, "host key"},
		{gitsource.Credentials{SSHPrivateKey: []byte("not a key"), SSHHostKey: hostKey}, "private key"},
		{gitsource.Credentials{SSHPrivateKey: key, SSHHostKey: hostKey}, "list refs"}, // dialled: nothing listens on port 1
	} {
		_, err := gitsource.Repository{URL: url, Credentials: tc.creds}.Resolve(context.Background(), "main")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %q: %v", tc.want, err)
		}
	}
}
