# Import by the service name and its hosts, in order, as <user>@<host>:<port>;
# the key and known_hosts come from the provider's ssh block.
terraform import kiln_host_release.backend 'backend,deploy@192.0.2.10:22,deploy@192.0.2.11:22'
