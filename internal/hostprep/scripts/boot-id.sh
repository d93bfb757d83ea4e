#!/usr/bin/env bash
# Prints the kernel's boot id, which changes at every boot.
cat /proc/sys/kernel/random/boot_id
