package libvirt

import (
	"fmt"
	"net"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// sshEndpoint is where the guest's SSH server is reached: the forwarded port on
// 127.0.0.1 for user-mode networking, otherwise port 22 on its first address.
func sshEndpoint(vm VM, addresses []string) (string, int) {
	for _, iface := range vm.Interfaces {
		if iface.UserMode {
			return "127.0.0.1", iface.SSHForwardPort
		}
	}
	if len(addresses) > 0 {
		return addresses[0], 22
	}
	return "", 0
}

// addresses lists the guest's IP addresses from the guest agent, or from the
// libvirt network's DHCP leases when the agent is not connected. A source that
// fails is skipped; only a lost connection is an error.
func addresses(conn *golibvirt.Libvirt, dom golibvirt.Domain, agentConnected bool) ([]string, error) {
	sources := []golibvirt.DomainInterfaceAddressesSource{golibvirt.DomainInterfaceAddressesSrcLease}
	if agentConnected {
		sources = append([]golibvirt.DomainInterfaceAddressesSource{golibvirt.DomainInterfaceAddressesSrcAgent}, sources...)
	}
	for _, src := range sources {
		ifaces, err := conn.DomainInterfaceAddresses(dom, uint32(src), 0)
		if disconnected(err) {
			return nil, err
		}
		if err != nil {
			continue
		}
		var out []string
		for _, iface := range ifaces {
			for _, a := range iface.Addrs {
				ip := net.ParseIP(a.Addr)
				if ip == nil || ip.IsLoopback() || ip.IsLinkLocalUnicast() {
					continue
				}
				out = append(out, ip.String())
			}
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
}

func agentConnected(dom libvirtxml.Domain) bool {
	if dom.Devices == nil {
		return false
	}
	for _, ch := range dom.Devices.Channels {
		if ch.Target != nil && ch.Target.VirtIO != nil && ch.Target.VirtIO.Name == agentChannel {
			return ch.Target.VirtIO.State == "connected"
		}
	}
	return false
}

// freeLocalPort finds a free TCP port on 127.0.0.1 for a user-mode SSH forward.
func freeLocalPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port on 127.0.0.1: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
