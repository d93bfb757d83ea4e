#!/usr/bin/env bash
# Prints the type of the file system on /sys/fs/cgroup: cgroup2fs under cgroup v2.
stat -fc %T /sys/fs/cgroup
