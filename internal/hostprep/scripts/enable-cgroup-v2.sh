#!/usr/bin/env bash
# Puts the unified cgroup hierarchy on the kernel command line (GRUB); it takes
# effect at the next boot.
set -e
sed -i -E 's/ ?systemd\.unified_cgroup_hierarchy=[^ "]*//g' /etc/default/grub
sed -i -E 's/^GRUB_CMDLINE_LINUX="(.*)"/GRUB_CMDLINE_LINUX="\1 systemd.unified_cgroup_hierarchy=1"/' /etc/default/grub
update-grub
