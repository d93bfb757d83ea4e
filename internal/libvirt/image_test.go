package libvirt

import (
	"encoding/binary"
	"testing"

	"libvirt.org/go/libvirtxml"
)

// The root disk passes the guest's trims and zeroed blocks down, so they leave
// the overlay and an image made from it.
func TestRootDiskDiscardsAndDetectsZeroes(t *testing.T) {
	doc, err := domainXML(sampleVM())
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	d := dom.Devices.Disks[0].Driver
	if d.Discard != "unmap" || d.DetectZeros != "unmap" {
		t.Fatalf("root disk driver = %+v, want discard and detect_zeroes unmap", d)
	}
}

func TestParseImageVolume(t *testing.T) {
	const doc = `<volume type='file'><name>go-0123456789ab.qcow2</name>
  <capacity unit='bytes'>4294967296</capacity><allocation unit='bytes'>1048576000</allocation>
  <target><path>/pool/go-0123456789ab.qcow2</path><format type='qcow2'/><compat>1.1</compat>
    <timestamps><mtime>1764430000.123</mtime></timestamps></target></volume>`
	img, err := parseImageVolume(doc, "/pool/go-0123456789ab.qcow2")
	if err != nil {
		t.Fatal(err)
	}
	if img.Format != "qcow2" || img.Compat != "1.1" || img.Capacity != 4<<30 || img.Allocation != 1048576000 || img.BackingPath != "" {
		t.Fatalf("image = %+v", img)
	}
	touched, err := parseImageVolume(doc[:len(doc)-len("1764430000.123</mtime></timestamps></target></volume>")]+"1764430001.5</mtime></timestamps></target></volume>", img.Path)
	if err != nil {
		t.Fatal(err)
	}
	if touched.Stat == img.Stat {
		t.Fatal("a new modification time left the stat as it was")
	}
}

func TestQcow2Compression(t *testing.T) {
	header := func(version uint32, incompatible uint64, length uint32, kind byte) []byte {
		h := make([]byte, qcow2HeaderBytes)
		copy(h, "QFI\xfb")
		binary.BigEndian.PutUint32(h[4:], version)
		binary.BigEndian.PutUint64(h[72:], incompatible)
		binary.BigEndian.PutUint32(h[100:], length)
		h[104] = kind
		return h
	}
	for name, c := range map[string]struct {
		h    []byte
		want string
	}{
		"zstd":               {header(3, 1<<3, 112, 1), "zstd"},
		"zlib, explicit":     {header(3, 1<<3, 112, 0), "zlib"},
		"no compression bit": {header(3, 0, 112, 1), "zlib"},
		"short header":       {header(3, 1<<3, 104, 1), "zlib"},
		"version 2":          {header(2, 0, 0, 0), "zlib"},
		"unknown type":       {header(3, 1<<3, 112, 7), "error"},
		"not qcow2":          {append([]byte("RAW!"), make([]byte, 101)...), "error"},
		"truncated":          {[]byte("QFI\xfb"), "error"},
	} {
		got, err := qcow2Compression(c.h)
		if err != nil {
			got = "error"
		}
		if got != c.want {
			t.Errorf("%s: %q (%v), want %q", name, got, err, c.want)
		}
	}
}

func TestHeaderWriterKeepsTheHeaderOnly(t *testing.T) {
	w := &headerWriter{}
	for _, chunk := range [][]byte{make([]byte, 100), []byte("abcdefgh"), []byte("ijk")} {
		if n, err := w.Write(chunk); n != len(chunk) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if len(w.b) != qcow2HeaderBytes || string(w.b[100:]) != "abcde" {
		t.Fatalf("kept %d bytes ending %q", len(w.b), w.b[100:])
	}
}
