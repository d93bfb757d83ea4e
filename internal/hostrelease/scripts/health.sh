#!/usr/bin/env bash
# Waits for a service to pass its health check, probing it on the host
# itself (127.0.0.1) with bash's /dev/tcp, which needs no curl: after the
# start period, one probe every interval, each within the timeout; it
# succeeds after <healthy> consecutive passes and fails after <unhealthy>
# consecutive failures, printing the last failure. With both thresholds 1
# and no start period it is a single probe, as a refresh runs it.
#
# Arguments: kind ("http" or "tcp"), port, path, expected status, expected
# body substring ("" for any), interval, timeout, start period (seconds, may
# be fractional), healthy threshold, unhealthy threshold.
kind=$1 port=$2 path=$3 status=$4 body=$5 interval=$6 timeout=$7 start=$8 healthy=$9 unhealthy=${10}

probe() {
	local response code
	case $kind in
	tcp)
		# The probes' scripts expand their own arguments.
		# shellcheck disable=SC2016
		if ! timeout "$timeout" bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' kiln "$port" 2>/dev/null; then
			why="tcp port $port: connection failed"
			return 1
		fi
		;;
	http)
		# shellcheck disable=SC2016
		response=$(timeout "$timeout" bash -c '
			exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
			printf "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" "$2" >&3
			cat <&3' kiln "$port" "$path" 2>/dev/null)
		if [ -z "$response" ]; then
			why="http GET $path on port $port: no answer within ${timeout}s"
			return 1
		fi
		code=$(head -n1 <<<"$response" | cut -d' ' -f2)
		if [ "$code" != "$status" ]; then
			why="http GET $path on port $port: status $code, want $status"
			return 1
		fi
		if [ -n "$body" ] && [[ ${response#*$'\r\n\r\n'} != *"$body"* ]]; then
			why="http GET $path on port $port: body does not contain \"$body\""
			return 1
		fi
		;;
	esac
}

sleep "$start"
passed=0 failed=0 why=
while :; do
	if probe; then
		passed=$((passed + 1)) failed=0
		if [ "$passed" -ge "$healthy" ]; then exit 0; fi
	else
		failed=$((failed + 1)) passed=0
		if [ "$failed" -ge "$unhealthy" ]; then
			if [ "$failed" -gt 1 ]; then why="$why ($failed consecutive failures)"; fi
			echo "$why" >&2
			exit 1
		fi
	fi
	sleep "$interval"
done
