#!/usr/bin/env python3
"""Repacks a golang.org/toolchain module zip as a go.dev release tarball.

    make-tarball.py <module.zip> <prefix> <out.tar.gz>

The "<prefix>" directory (golang.org/toolchain@v0.0.1-go1.24.4.linux-amd64/)
becomes "go/", "_go.mod" files become "go.mod" again, and the programs under
bin/ and pkg/tool/ get their exec bits back (module zips carry no file modes).
The same rewrite kiln does for source = "module_proxy" (internal/gotoolchain).
"""
import io
import os
import subprocess
import sys
import tarfile
import zipfile


def main(zip_path, prefix, out):
    tmp = out + ".tmp"
    with open(tmp, "wb") as f:
        gz = subprocess.Popen(["gzip", "-6", "-n"], stdin=subprocess.PIPE, stdout=f)
        with zipfile.ZipFile(zip_path) as zf, tarfile.open(fileobj=gz.stdin, mode="w|", format=tarfile.GNU_FORMAT) as tf:
            dirs = set()
            for info in sorted(zf.infolist(), key=lambda i: i.filename):
                if not info.filename.startswith(prefix):
                    sys.exit(f"zip entry {info.filename!r} lacks prefix {prefix!r}")
                rel = info.filename[len(prefix):]
                if not rel or rel.endswith("/"):
                    continue
                if os.path.basename(rel) == "_go.mod":
                    rel = os.path.join(os.path.dirname(rel), "go.mod")
                name = "go/" + rel
                missing = []
                d = os.path.dirname(name)
                while d and d not in dirs:
                    missing.append(d)
                    d = os.path.dirname(d)
                for d in reversed(missing):
                    dirs.add(d)
                    t = tarfile.TarInfo(d)
                    t.type, t.mode, t.mtime = tarfile.DIRTYPE, 0o755, 0
                    tf.addfile(t)
                t = tarfile.TarInfo(name)
                t.size, t.mtime = info.file_size, 0
                t.mode = 0o755 if rel.startswith(("bin/", "pkg/tool/")) else 0o644
                with zf.open(info) as src:
                    tf.addfile(t, io.BufferedReader(src))
        gz.stdin.close()
        if gz.wait() != 0:
            sys.exit("gzip failed")
    os.replace(tmp, out)


if __name__ == "__main__":
    main(*sys.argv[1:])
