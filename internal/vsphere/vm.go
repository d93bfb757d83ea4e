package vsphere

import "time"

// VM is a Go build VM cloned from a template (or another VM).
type VM struct {
	Name string
	// Datacenter holds the VM; empty means the client's default.
	Datacenter string
	// Source is the template or VM cloned: an inventory path or a name.
	Source string
	// LinkedClone makes the clone's disks children of a snapshot of Source.
	LinkedClone bool
	// Snapshot is the snapshot a linked clone starts from; empty means the
	// source's current snapshot.
	Snapshot string

	// Placement. Cluster and Host are names; ResourcePool is a path below the
	// cluster's (or host's) root pool, empty for the root pool; Folder is a path
	// below the datacenter's VM folder, empty for that folder; Datastore is a name.
	Cluster      string
	Host         string
	ResourcePool string
	Datastore    string
	Folder       string

	NumCPUs   int32
	MemoryMiB int64
	// DiskGiB lists the disks' sizes in device order; nil keeps the source's.
	DiskGiB []int64
	// Networks lists the port group of each network adapter in device order;
	// nil keeps the source's.
	Networks []string
	// Customization is applied by VMware Tools at the first power-on; nil skips it.
	// Read back from the record the clone left; nil when there is none.
	Customization *Customization
	// ExtraConfig holds the extraConfig (guestinfo.*) keys Kiln manages.
	ExtraConfig map[string]string

	PowerOn bool
	// AllowPowerCycle lets an update power a running VM off and on when vSphere
	// cannot make a change live (no hot-add, a CPU or memory decrease).
	AllowPowerCycle bool
	// IPWait bounds the wait for a guest IP address after Kiln powers the VM on
	// (not after an update that leaves it running); 0 skips it.
	IPWait time.Duration

	// Read back.
	UUID         string // BIOS UUID (config.uuid)
	MOID         string
	IPAddresses  []string
	DefaultIP    string
	CPUHotAdd    bool
	MemoryHotAdd bool
	Template     bool

	toolsRunning bool
}

// Customization is Linux guest customization: host name, DNS and IPv4 settings of
// the first network adapter. A clone records it on the VM as JSON under
// keyCustomization, so that an imported VM reads it back.
type Customization struct {
	Hostname    string   `json:"hostname,omitempty"`
	Domain      string   `json:"domain,omitempty"`
	DNSServers  []string `json:"dnsServers,omitempty"`
	DNSSuffixes []string `json:"dnsSuffixes,omitempty"`
	// IPv4Address is an address with prefix length (10.0.0.5/24); empty means DHCP.
	IPv4Address string `json:"ipv4Address,omitempty"`
	IPv4Gateway string `json:"ipv4Gateway,omitempty"`
}

// ReservedKeyPrefix starts the extraConfig keys Kiln keeps on the VM so that an
// imported VM reads back whole; a user's extra_config may not use it.
const ReservedKeyPrefix = "kiln."

// The keys under ReservedKeyPrefix.
const (
	keySource        = "kiln.source"
	keyLinkedClone   = "kiln.linkedClone"
	keySnapshot      = "kiln.snapshot"
	keyCustomization = "kiln.customization"
	keyManagedKeys   = "kiln.extraConfigKeys"
)

// GiB is a convenience for disk sizes.
const GiB = int64(1) << 30

// ShutdownGrace is how long a guest is given to shut down through VMware Tools
// before it is powered off.
const ShutdownGrace = 90 * time.Second

// ToolsRunning is set by read on the VM's readback when VMware Tools answer.
func (v VM) ToolsRunning() bool { return v.toolsRunning }
