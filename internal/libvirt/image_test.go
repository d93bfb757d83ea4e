package libvirt

import (
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
