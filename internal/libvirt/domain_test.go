package libvirt

import (
	"reflect"
	"strings"
	"testing"

	"libvirt.org/go/libvirtxml"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
)

func sampleVM() VM {
	return VM{
		Name: "builder", UUID: "0b7c5f0e-3d1b-4a5e-9b1e-2f8c6a4d9e10", Type: "qemu",
		Pool: "default", BaseVolume: "debian12.qcow2",
		VCPU: 2, MemoryMiB: 1536, Running: true,
		RootVolume: "builder-root.qcow2", SeedVolume: "builder-cidata.iso",
		SSHHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests",
		Interfaces: []Interface{
			{Network: "default", MAC: "52:54:00:aa:bb:cc"},
			{UserMode: true, SSHForwardPort: 40022, MAC: "52:54:00:11:22:33"},
		},
		CloudInit: cloudinit.Config{Hostname: "builder", SSHAuthorizedKeys: []string{"ssh-ed25519 AAAA me"}},
	}
}

func TestDomainXMLRoundTrip(t *testing.T) {
	want := sampleVM()
	doc, err := domainXML(want)
	if err != nil {
		t.Fatal(err)
	}
	got, dom, err := parseDomain(doc)
	if err != nil {
		t.Fatal(err)
	}
	// Running, sizes and addresses come from libvirt calls, not the XML.
	want.Running = false
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("round trip mismatch\n got: %+v\nwant: %+v", got, want)
	}
	if dom.Devices.Disks[0].Source.Volume.Volume != "builder-root.qcow2" || dom.Devices.Disks[1].ReadOnly == nil {
		t.Fatalf("disks = %+v", dom.Devices.Disks)
	}
}

func TestDomainXMLUserModeForwardsSSHOnLoopbackOnly(t *testing.T) {
	doc, err := domainXML(sampleVM())
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, a := range dom.QEMUCommandline.Args {
		args = append(args, a.Value)
	}
	joined := strings.Join(args, " ")
	for _, want := range []string{"hostfwd=tcp:127.0.0.1:40022-:22", "mac=52:54:00:11:22:33", "addr=0x10"} {
		if !strings.Contains(joined, want) {
			t.Errorf("QEMU command line %q lacks %q", joined, want)
		}
	}
	if len(dom.Devices.Interfaces) != 1 || dom.Devices.Interfaces[0].Source.Network.Network != "default" {
		t.Errorf("libvirt interfaces = %+v, want only the network one", dom.Devices.Interfaces)
	}
}

func TestParseDomainIgnoresOtherMetadata(t *testing.T) {
	doc, err := domainXML(sampleVM())
	if err != nil {
		t.Fatal(err)
	}
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(doc); err != nil {
		t.Fatal(err)
	}
	dom.Metadata.XML = `<other:app xmlns:other="urn:other"><x>1</x></other:app>` + dom.Metadata.XML
	doc, _ = dom.Marshal()
	got, _, err := parseDomain(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got.Pool != "default" || got.SSHHostKey == "" || got.CloudInit.Hostname != "builder" {
		t.Fatalf("kiln metadata not read past another application's: %+v", got)
	}
}

func TestToMiB(t *testing.T) {
	for _, c := range []struct {
		v    uint64
		unit string
		want uint64
	}{{1048576, "KiB", 1024}, {2, "GiB", 2048}, {512, "MiB", 512}, {1 << 30, "bytes", 1024}, {1048576, "", 1024}} {
		if got := toMiB(c.v, c.unit); got != c.want {
			t.Errorf("toMiB(%d, %q) = %d, want %d", c.v, c.unit, got, c.want)
		}
	}
}

func TestDomainUUID(t *testing.T) {
	u, ok := domainUUID("0b7c5f0e-3d1b-4a5e-9b1e-2f8c6a4d9e10")
	if !ok || u[0] != 0x0b || u[15] != 0x10 {
		t.Fatalf("domainUUID = %x, %v", u, ok)
	}
	for _, name := range []string{"builder", "0b7c5f0e3d1b4a5e9b1e2f8c6a4d9e10"} {
		if _, ok := domainUUID(name); ok {
			t.Errorf("the domain name %q read as a UUID", name)
		}
	}
}

func TestDomainTypeFrom(t *testing.T) {
	qemuOnly := libvirtxml.Caps{Guests: []libvirtxml.CapsGuest{{OSType: "hvm", Arch: libvirtxml.CapsGuestArch{Name: "x86_64", Domains: []libvirtxml.CapsGuestDomain{{Type: "qemu"}}}}}}
	if got := domainTypeFrom(qemuOnly); got != "qemu" {
		t.Errorf("without kvm: %q, want qemu", got)
	}
	withKVM := qemuOnly
	withKVM.Guests[0].Arch.Domains = append(withKVM.Guests[0].Arch.Domains, libvirtxml.CapsGuestDomain{Type: "kvm"})
	if got := domainTypeFrom(withKVM); got != "kvm" {
		t.Errorf("with kvm: %q, want kvm", got)
	}
}

func TestDomainXMLCreatingMark(t *testing.T) {
	vm := sampleVM()
	vm.creating = true
	doc, err := domainXML(vm)
	if err != nil {
		t.Fatal(err)
	}
	got, _, err := parseDomain(doc)
	if err != nil || !got.creating {
		t.Fatalf("a domain marked as being created reads back creating = %v (%v)", got.creating, err)
	}
	vm.creating = false
	if doc, _ = domainXML(vm); strings.Contains(doc, "creating") {
		t.Errorf("a created domain still carries the mark:\n%s", doc)
	}
}

// A transient bake VM carries the image it bakes; other domains no mark.
func TestDomainXMLBakeMark(t *testing.T) {
	vm := sampleVM()
	vm.BakeOf = "go-0123456789ab.qcow2"
	doc, err := domainXML(vm)
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := parseDomain(doc); err != nil || got.BakeOf != vm.BakeOf {
		t.Fatalf("bake VM reads back BakeOf = %q (%v)", got.BakeOf, err)
	}
	vm.BakeOf = ""
	if doc, _ = domainXML(vm); strings.Contains(doc, "bake-of") {
		t.Errorf("a build VM carries a bake mark:\n%s", doc)
	}
}

func TestDiskUses(t *testing.T) {
	const path = "/var/lib/libvirt/images/b-root.qcow2"
	for _, tc := range []struct {
		src  *libvirtxml.DomainDiskSource
		want bool
	}{
		{nil, false},
		{&libvirtxml.DomainDiskSource{Volume: &libvirtxml.DomainDiskSourceVolume{Pool: "default", Volume: "b-root.qcow2"}}, true},
		{&libvirtxml.DomainDiskSource{Volume: &libvirtxml.DomainDiskSourceVolume{Pool: "other", Volume: "b-root.qcow2"}}, false},
		{&libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: path}}, true},
		{&libvirtxml.DomainDiskSource{Block: &libvirtxml.DomainDiskSourceBlock{Dev: "/dev/sdb"}}, false},
	} {
		if got := diskUses(tc.src, "default", "b-root.qcow2", path); got != tc.want {
			t.Errorf("diskUses(%+v) = %v, want %v", tc.src, got, tc.want)
		}
	}
}
