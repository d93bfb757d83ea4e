package gotoolchain

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
	"time"
)

// zipToTarball rewrites a golang.org/toolchain module zip as the release
// tarball layout: the "golang.org/toolchain@<version>/" prefix becomes "go/",
// "_go.mod" files become "go.mod" again, and the programs under bin/ and
// pkg/tool/ get their exec bits back (module zips carry no file modes).
func zipToTarball(zr *zip.Reader, prefix string, w io.Writer) error {
	gz, err := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	files := append([]*zip.File(nil), zr.File...)
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	addDir := func(dir string) error {
		var missing []string
		for d := dir; d != "." && d != "/" && !dirs[d]; d = path.Dir(d) {
			missing = append(missing, d)
		}
		for i := len(missing) - 1; i >= 0; i-- {
			dirs[missing[i]] = true
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: missing[i] + "/", Mode: 0o755, ModTime: mtime}); err != nil {
				return err
			}
		}
		return nil
	}
	for _, f := range files {
		rel, ok := strings.CutPrefix(f.Name, prefix)
		if !ok {
			return fmt.Errorf("toolchain zip entry %q lacks prefix %q", f.Name, prefix)
		}
		if strings.HasSuffix(rel, "/") || rel == "" {
			continue
		}
		if path.Base(rel) == "_go.mod" {
			rel = path.Join(path.Dir(rel), "go.mod")
		}
		name := "go/" + rel
		if err := addDir(path.Dir(name)); err != nil {
			return err
		}
		mode := int64(0o644)
		if strings.HasPrefix(rel, "bin/") || strings.HasPrefix(rel, "pkg/tool/") {
			mode = 0o755
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(f.UncompressedSize64), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("toolchain zip entry %q: %w", f.Name, err)
		}
		_, err = io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("toolchain zip entry %q: %w", f.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
}
