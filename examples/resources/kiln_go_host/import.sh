# Import by user@host:port; the key and known_hosts come from the provider's ssh block.
terraform import kiln_go_host.builder debian@192.0.2.10:22
