#!/usr/bin/env bash
# Reboots a second from now, so the command returns before the connection drops.
(
	sleep 1
	systemctl reboot
) >/dev/null 2>&1 &
