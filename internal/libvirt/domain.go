package libvirt

import (
	"crypto/rand"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"

	"libvirt.org/go/libvirtxml"

	"github.com/kilnhq/terraform-provider-kiln/internal/cloudinit"
)

// metadataNS marks the element Kiln keeps in a domain's <metadata>: what it needs
// to read a VM back (and import it) that the rest of the domain XML does not say.
const metadataNS = "https://kiln.dev/xmlns/libvirt-vm/1"

type vmMetadata struct {
	XMLName    xml.Name `xml:"https://kiln.dev/xmlns/libvirt-vm/1 vm"`
	Pool       string   `xml:"pool"`
	BaseVolume string   `xml:"base-volume,omitempty"`
	BaseImage  string   `xml:"base-image,omitempty"`
	FullCopy   bool     `xml:"full-copy"`
	RootVolume string   `xml:"root-volume"`
	SeedVolume string   `xml:"seed-volume"`
	SSHHostKey string   `xml:"ssh-host-key"`
	CloudInit  string   `xml:"cloud-init"` // JSON of cloudinit.Config
	Creating   bool     `xml:"creating,omitempty"`
	BakeOf     string   `xml:"bake-of,omitempty"`
}

const (
	userNetdevID   = "kilnuser0"
	userNICPCISlot = 0x10 // clear of the slots libvirt assigns to its own devices
	agentChannel   = "org.qemu.guest_agent.0"
	rootDiskTarget = "vda"
)

// domainXML renders the libvirt domain for vm.
func domainXML(vm VM) (string, error) {
	ci, err := json.Marshal(vm.CloudInit)
	if err != nil {
		return "", fmt.Errorf("encode cloud-init: %w", err)
	}
	meta, err := xml.Marshal(vmMetadata{
		Pool: vm.Pool, BaseVolume: vm.BaseVolume, BaseImage: vm.BaseImage, FullCopy: vm.FullCopy,
		RootVolume: vm.RootVolume, SeedVolume: vm.SeedVolume, SSHHostKey: vm.SSHHostKey, CloudInit: string(ci),
		Creating: vm.creating, BakeOf: vm.BakeOf,
	})
	if err != nil {
		return "", fmt.Errorf("encode metadata: %w", err)
	}

	dom := &libvirtxml.Domain{
		Type:     vm.Type,
		Name:     vm.Name,
		UUID:     vm.UUID,
		Metadata: &libvirtxml.DomainMetadata{XML: string(meta)},
		Memory:   &libvirtxml.DomainMemory{Value: uint(vm.MemoryMiB), Unit: "MiB"},
		VCPU:     &libvirtxml.DomainVCPU{Value: vm.VCPU},
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Arch: "x86_64", Machine: "pc", Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
			// The firmware writes to the serial console too, so a guest with
			// nothing to boot says so there (boot progress is judged from it).
			BIOS: &libvirtxml.DomainBIOS{UseSerial: "yes"},
		},
		// ACPI lets a shutdown request reach the guest.
		Features:   &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		OnPoweroff: "destroy",
		OnReboot:   "restart",
		OnCrash:    "destroy",
		Devices: &libvirtxml.DomainDeviceList{
			Disks: []libvirtxml.DomainDisk{
				{
					Device: "disk",
					// Blocks the guest trims or zeroes leave the overlay, so an
					// image made from it holds only what the guest keeps.
					Driver: &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "qcow2", Discard: "unmap", DetectZeros: "unmap"},
					Source: &libvirtxml.DomainDiskSource{Volume: &libvirtxml.DomainDiskSourceVolume{Pool: vm.Pool, Volume: vm.RootVolume}},
					Target: &libvirtxml.DomainDiskTarget{Dev: rootDiskTarget, Bus: "virtio"},
				},
				{
					Device:   "cdrom",
					Driver:   &libvirtxml.DomainDiskDriver{Name: "qemu", Type: "raw"},
					Source:   &libvirtxml.DomainDiskSource{Volume: &libvirtxml.DomainDiskSourceVolume{Pool: vm.Pool, Volume: vm.SeedVolume}},
					Target:   &libvirtxml.DomainDiskTarget{Dev: "hdc", Bus: "ide"},
					ReadOnly: &libvirtxml.DomainDiskReadOnly{},
				},
			},
			Serials: []libvirtxml.DomainSerial{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Log:    &libvirtxml.DomainChardevLog{File: serialLogPath(vm.Name), Append: "off"},
			}},
			Consoles: []libvirtxml.DomainConsole{{
				Source: &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}},
				Target: &libvirtxml.DomainConsoleTarget{Type: "serial"},
			}},
			Channels: []libvirtxml.DomainChannel{{
				Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
				Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: agentChannel}},
			}},
			// A virtio RNG keeps first boot (host keys, TLS) from stalling on entropy.
			RNGs: []libvirtxml.DomainRNG{{
				Model:   "virtio",
				Backend: &libvirtxml.DomainRNGBackend{Random: &libvirtxml.DomainRNGBackendRandom{Device: "/dev/urandom"}},
			}},
		},
	}
	for _, iface := range vm.Interfaces {
		switch {
		case iface.UserMode:
			// libvirt 9 has no port forwarding for user-mode networking without
			// passt, so the NIC is given to QEMU directly, on a fixed PCI slot.
			dom.QEMUCommandline = &libvirtxml.DomainQEMUCommandline{Args: []libvirtxml.DomainQEMUCommandlineArg{
				{Value: "-netdev"},
				{Value: fmt.Sprintf("user,id=%s,hostfwd=tcp:127.0.0.1:%d-:22", userNetdevID, iface.SSHForwardPort)},
				{Value: "-device"},
				{Value: fmt.Sprintf("virtio-net-pci,netdev=%s,mac=%s,bus=pci.0,addr=%#x", userNetdevID, iface.MAC, userNICPCISlot)},
			}}
		default:
			nic := libvirtxml.DomainInterface{Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"}}
			if iface.MAC != "" {
				nic.MAC = &libvirtxml.DomainInterfaceMAC{Address: iface.MAC}
			}
			if iface.Network != "" {
				nic.Source = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: iface.Network}}
			} else {
				nic.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: iface.Bridge}}
			}
			dom.Devices.Interfaces = append(dom.Devices.Interfaces, nic)
		}
	}
	return dom.Marshal()
}

func serialLogPath(name string) string { return "/var/log/libvirt/qemu/" + name + "-serial.log" }

var hostfwdPort = regexp.MustCompile(`hostfwd=tcp:127\.0\.0\.1:(\d+)-:22`)
var deviceMAC = regexp.MustCompile(`mac=([0-9a-fA-F:]{17})`)

// parseDomain reads a VM back from its domain XML. Volumes' sizes, the running
// state and addresses are filled in by the caller.
func parseDomain(doc string) (VM, libvirtxml.Domain, error) {
	var dom libvirtxml.Domain
	if err := dom.Unmarshal(doc); err != nil {
		return VM{}, dom, fmt.Errorf("parse domain XML: %w", err)
	}
	vm := VM{Name: dom.Name, UUID: dom.UUID, Type: dom.Type}
	if dom.Memory != nil {
		vm.MemoryMiB = toMiB(uint64(dom.Memory.Value), dom.Memory.Unit)
	}
	if dom.VCPU != nil {
		vm.VCPU = dom.VCPU.Value
	}
	if dom.Metadata != nil {
		var meta vmMetadata
		// <metadata> may hold other applications' elements: find Kiln's.
		dec := xml.NewDecoder(strings.NewReader(dom.Metadata.XML))
		for {
			tok, err := dec.Token()
			if err != nil {
				break
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Space == metadataNS {
				if err := dec.DecodeElement(&meta, &se); err != nil {
					return vm, dom, fmt.Errorf("parse kiln metadata: %w", err)
				}
				break
			}
		}
		vm.Pool, vm.BaseVolume, vm.BaseImage, vm.FullCopy = meta.Pool, meta.BaseVolume, meta.BaseImage, meta.FullCopy
		vm.RootVolume, vm.SeedVolume, vm.SSHHostKey, vm.creating = meta.RootVolume, meta.SeedVolume, meta.SSHHostKey, meta.Creating
		vm.BakeOf = meta.BakeOf
		if meta.CloudInit != "" {
			var ci cloudinit.Config
			if err := json.Unmarshal([]byte(meta.CloudInit), &ci); err != nil {
				return vm, dom, fmt.Errorf("parse kiln metadata cloud-init: %w", err)
			}
			vm.CloudInit = ci
		}
	}
	if dom.Devices != nil {
		for _, nic := range dom.Devices.Interfaces {
			iface := Interface{}
			if nic.MAC != nil {
				iface.MAC = nic.MAC.Address
			}
			if nic.Source != nil && nic.Source.Network != nil {
				iface.Network = nic.Source.Network.Network
			}
			if nic.Source != nil && nic.Source.Bridge != nil {
				iface.Bridge = nic.Source.Bridge.Bridge
			}
			vm.Interfaces = append(vm.Interfaces, iface)
		}
	}
	if dom.QEMUCommandline != nil {
		var args []string
		for _, a := range dom.QEMUCommandline.Args {
			args = append(args, a.Value)
		}
		joined := strings.Join(args, " ")
		if m := hostfwdPort.FindStringSubmatch(joined); m != nil {
			port, _ := strconv.Atoi(m[1])
			iface := Interface{UserMode: true, SSHForwardPort: port}
			if mm := deviceMAC.FindStringSubmatch(joined); mm != nil {
				iface.MAC = mm[1]
			}
			vm.Interfaces = append(vm.Interfaces, iface)
		}
	}
	return vm, dom, nil
}

// toMiB converts a libvirt memory value in unit to MiB.
func toMiB(v uint64, unit string) uint64 {
	switch strings.ToLower(unit) {
	case "b", "bytes":
		return v >> 20
	case "", "k", "kib":
		return v >> 10
	case "m", "mib":
		return v
	case "g", "gib":
		return v << 10
	case "kb":
		return v * 1000 >> 20
	case "mb":
		return v * 1000 * 1000 >> 20
	case "gb":
		return v * 1000 * 1000 * 1000 >> 20
	}
	return v >> 10
}

// randomMAC returns a locally administered unicast address in QEMU's 52:54:00 range.
func randomMAC() (string, error) {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return net.HardwareAddr{0x52, 0x54, 0x00, b[0], b[1], b[2]}.String(), nil
}
