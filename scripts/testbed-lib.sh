# Shared by the test bed scripts, sourced after they set $run (PID files) and
# $logs, and define log: Debian packages installed when missing, and daemons
# started, waited for and stopped without systemd.

# install_missing installs those of the Debian packages given that are not
# installed yet.
install_missing() {
	local missing=() p
	for p in "$@"; do
		[[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *"ok installed" ]] || missing+=("$p")
	done
	((${#missing[@]})) || return 0
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >&2
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

pid_alive() { [[ -f $run/$1.pid ]] && kill -0 "$(cat "$run/$1.pid")" 2>/dev/null; }

start_daemon() { # name command...
	local name=$1
	shift
	if pid_alive "$name"; then
		return 0
	fi
	log "starting $name"
	# Not with the bring-up lock (fd 8): a daemon holding it would hold it for good.
	nohup setsid "$@" >>"$logs/$name.log" 2>&1 </dev/null 8>&- &
	echo $! >"$run/$name.pid"
}

wait_for() { # what seconds command...
	local what=$1 secs=$2
	shift 2
	for _ in $(seq 1 $((secs * 5))); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	log "$what did not come up; see $logs"
	return 1
}

stop_daemons() { # name... (in the order given)
	local d
	for d in "$@"; do
		if pid_alive "$d"; then
			log "stopping $d"
			kill "$(cat "$run/$d.pid")" 2>/dev/null || true
		fi
		rm -f "$run/$d.pid"
	done
}
