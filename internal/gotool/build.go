package gotool

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/kilnhq/terraform-provider-kiln/internal/gotoolchain"
)

// LocalPlatform is this machine's platform, as toolchain archives name it.
func LocalPlatform() gotoolchain.Platform {
	arch := runtime.GOARCH
	if arch == "arm" {
		arch = "armv6l"
	}
	return gotoolchain.Platform{OS: runtime.GOOS, Arch: arch}
}

// goArch is the GOARCH (and GOARM) environment for a platform's Arch.
func goArch(arch string) []string {
	if arch == "armv6l" {
		return []string{"GOARCH=arm", "GOARM=6"}
	}
	return []string{"GOARCH=" + arch}
}

// Build returns t built for target by the go command of toolchain, the
// verified archive of go<goVersion> for LocalPlatform. The binary is cached by
// the tool, the toolchain archive and the target, so further hosts and
// applies reuse it; concurrent builds of one binary build it once.
func (b *Builder) Build(ctx context.Context, t Tool, goVersion string, toolchain gotoolchain.Archive, target gotoolchain.Platform) (gotoolchain.Artifact, error) {
	if toolchain.Open == nil {
		return gotoolchain.Artifact{}, fmt.Errorf("%s: the toolchain go%s must be an archive on this machine", t, goVersion)
	}
	cache := &gotoolchain.Cache{Dir: filepath.Join(b.Dir, "binaries"), Ext: ".bin"}
	key := strings.Join([]string{"go-tool", t.String(), b.Proxy.BaseURL(), b.Proxy.SumDBKey(),
		"go" + goVersion, toolchain.SHA256, target.String()}, " ")
	start := time.Now()
	a, hit, err := cache.Get(key, func(w io.Writer) (gotoolchain.Artifact, error) {
		return b.build(ctx, t, goVersion, toolchain, target, w)
	})
	if err != nil {
		return a, fmt.Errorf("build %s for %s: %w", t, target, err)
	}
	msg := "go tool built"
	if hit {
		msg = "go tool from cache"
	}
	b.log(ctx, msg, "tool", t.String(), "go", goVersion, "platform", target.String(), "sha256", a.SHA256,
		"seconds", float64(time.Since(start).Milliseconds())/1000)
	return a, nil
}

func (b *Builder) build(ctx context.Context, t Tool, goVersion string, toolchain gotoolchain.Archive, target gotoolchain.Platform, w io.Writer) (gotoolchain.Artifact, error) {
	goroot, err := b.unpack(toolchain)
	if err != nil {
		return gotoolchain.Artifact{}, fmt.Errorf("unpack go%s: %w", goVersion, err)
	}
	tmp := filepath.Join(b.Dir, "tmp")
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return gotoolchain.Artifact{}, err
	}
	gopath, err := os.MkdirTemp(tmp, "gopath-*")
	if err != nil {
		return gotoolchain.Artifact{}, err
	}
	defer os.RemoveAll(gopath)
	b.log(ctx, "building go tool", "tool", t.String(), "go", goVersion, "platform", target.String())
	cmd := exec.CommandContext(ctx, filepath.Join(goroot, "bin", "go"), "install", "-trimpath", t.String())
	cmd.Dir = gopath
	// The environment is whole: no GOFLAGS, GONOSUMDB, GOPRIVATE or go env
	// file of this machine's user turns the checksum database off.
	cmd.Env = append([]string{
		"HOME=" + gopath, "PATH=" + os.Getenv("PATH"), "GOENV=off", "GOROOT=" + goroot,
		"GOPATH=" + gopath, "GOMODCACHE=" + filepath.Join(b.Dir, "mod"), "GOCACHE=" + filepath.Join(b.Dir, "build"),
		"GOPROXY=" + b.Proxy.BaseURL(), "GOSUMDB=" + b.Proxy.SumDBKey(), "GOFLAGS=-mod=mod -modcacherw",
		"GOTOOLCHAIN=local", "GOWORK=off", "CGO_ENABLED=0", "GOOS=" + target.OS,
	}, goArch(target.Arch)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		text := strings.TrimSpace(string(out))
		if strings.Contains(text, "build constraints exclude all Go files") || strings.Contains(text, "cgo") {
			text += "\n(Kiln builds tools as pure Go, CGO_ENABLED=0, on the machine running Terraform: tools that need cgo are not supported)"
		}
		return gotoolchain.Artifact{}, fmt.Errorf("go install: %w\n%s", err, text)
	}
	bin := filepath.Join(gopath, "bin", t.Name())
	if local := LocalPlatform(); target != local {
		bin = filepath.Join(gopath, "bin", target.OS+"_"+strings.TrimPrefix(goArch(target.Arch)[0], "GOARCH="), t.Name())
	}
	f, err := os.Open(bin)
	if err != nil {
		return gotoolchain.Artifact{}, fmt.Errorf("go install left no binary: %w", err)
	}
	defer f.Close()
	if _, err := io.Copy(w, f); err != nil {
		return gotoolchain.Artifact{}, err
	}
	return gotoolchain.Artifact{
		Version: t.Version, OS: target.OS, Arch: target.Arch, Source: t.String(),
		Evidence: fmt.Sprintf("go%s install with GOPROXY=%s GOSUMDB=%s", goVersion, b.Proxy.BaseURL(), b.Proxy.SumDBKey()),
	}, nil
}

// unpack puts the toolchain archive under Dir/toolchains/<sha256>, once, and
// returns its GOROOT. It is unpacked beside and renamed into place, so a
// half-unpacked toolchain is never used.
func (b *Builder) unpack(a gotoolchain.Archive) (string, error) {
	dir := filepath.Join(b.Dir, "toolchains", a.SHA256)
	goroot := filepath.Join(dir, "go")
	if _, err := os.Stat(filepath.Join(goroot, "bin", "go")); err == nil {
		return goroot, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "unpack-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	rc, err := a.Open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	if err := untar(rc, tmp); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(goroot, "bin", "go")); serr == nil {
			return goroot, nil // another build unpacked it meanwhile
		}
		return "", err
	}
	return goroot, nil
}

// untar unpacks a gzipped tarball of regular files and directories into dir.
func untar(r io.Reader, dir string) error {
	gz, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(h.Name)
		if !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q leaves the directory", h.Name)
		}
		target := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := writeFile(target, tr, fs.FileMode(h.Mode).Perm()|0o644); err != nil {
				return err
			}
		}
	}
	// The archive's final read checks its hash (Artifact.Open): drain it.
	_, err = io.Copy(io.Discard, r)
	return err
}

func writeFile(path string, r io.Reader, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
