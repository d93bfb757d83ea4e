#!/usr/bin/env bash
# Prints every fact Kiln manages in one round trip, one "key=value" a line.
# It leans on shell builtins: under emulation each process it starts costs
# 50-70 ms. bin/go is hashed only when its inode, size or change time differ
# from what the install recorded, since overwriting it moves its change time;
# so are the Go tools Kiln installed.
#
# Arguments: toolchain root, marker file name, PAM limits file, systemd limits
# file, GOCACHE user ("" for none), then the sysctls to read.
root=$1 marker=$2 limits=$3 service_limits=$4 cache_user=$5
shift 5

# ~user finds the home directory without starting getent; it goes through
# eval, so only a valid user name does.
home=
if [[ $cache_user =~ ^[a-z_][a-z0-9_-]*[$]?$ ]]; then
	eval "home=~$cache_user"
	gocache="$home/.cache/go-build"
fi
if [ -e "$root" ] && ! { [ -r "$root" ] && [ -x "$root" ]; }; then echo "denied=$root"; fi
# shellcheck source=/dev/null
. /etc/os-release
echo "os=$PRETTY_NAME"
echo "ostype=$OSTYPE"
read -r kernel </proc/sys/kernel/osrelease
echo "kernel=$kernel"
echo "arch=$HOSTTYPE"
read -r cmdline </proc/cmdline
echo "cmdline=$cmdline"
while read -r _ mnt type opts _; do
	case $mnt in
	/sys/fs/cgroup) cgroupfs=$type ;;
	"${gocache:-}") [ "$type" = tmpfs ] && gocache_opts=$opts ;;
	esac
done </proc/self/mounts
[ "$cgroupfs" = cgroup2 ] && cgroupfs=cgroup2fs
echo "cgroupfs=$cgroupfs"
while read -r k v _; do
	[ "$k" = SwapTotal: ] && echo "swaptotal=$v"
done </proc/meminfo
n=-1
while read -r _; do n=$((n + 1)); done </proc/swaps
echo "swapactive=$n"
n=0
while read -r dev mnt type _; do
	case $dev in "#"* | "") continue ;; esac
	[ "$type" = swap ] && n=$((n + 1))
	[ -n "${gocache:-}" ] && [ "$mnt" = "$gocache" ] && [ -n "${gocache_opts:-}" ] && echo "gocache=$gocache_opts"
done </etc/fstab
echo "fstabswap=$n"
declare -A fingerprint
while IFS='|' read -r name link fp; do
	case $name in
	"$root/current") [[ $link == *" -> "* ]] && echo "default=${link#* -> }" ;;
	/usr/local/bin/go) [[ $link == *" -> "* ]] && echo "golink=${link#* -> }" ;;
	*) fingerprint[$name]=$fp ;;
	esac
done < <(QUOTING_STYLE=literal stat -c '%n|%N|%i:%s:%.9Z' "$root/current" /usr/local/bin/go "$root"/*/bin/go 2>/dev/null)
for d in "$root"/*/; do
	d=${d%/}
	[ -L "$d" ] && continue
	[ -f "$d/$marker" ] || continue
	v=${d##*/}
	read -r recorded <"$d/$marker"
	# The archive a build was verified with (scripts/verify-build.sh).
	built=
	if [ -f "$d/$marker-build" ]; then read -r built <"$d/$marker-build" || true; fi
	sum=-
	if [ -n "${fingerprint[$d/bin/go]:-}" ]; then
		case " $recorded " in
		*" stat=${fingerprint[$d/bin/go]} "*) sum=${recorded#* go=} sum=${sum%% *} ;;
		*) sum=$(sha256sum "$d/bin/go" | cut -d' ' -f1) ;;
		esac
	fi
	echo "toolchain=$v $sum $recorded${built:+ built=$built}"
	if [ -f "$d/go.env" ]; then
		while read -r line; do
			case $line in "#"* | "") ;; *) echo "goenv=$v $line" ;; esac
		done <"$d/go.env"
	fi
done
for m in "$root"/.kiln-owners/*; do
	[ -f "$m" ] || continue
	read -r held <"$m" || true
	echo "claim=${m##*/} $held"
done
# Go tools Kiln installed (scripts/tools.sh), each hashed only when its inode,
# size or change time moved since the install; one stat for all of them.
declare -A toolstat
tools=()
for m in "$root"/.kiln-tools/*; do
	[ -f "$m" ] || continue
	while read -r p sum fp ref; do
		[ -n "$p" ] && tools+=("${m##*/} $p $sum $fp $ref")
	done <"$m"
done
if ((${#tools[@]})); then
	while IFS='|' read -r name fp; do toolstat[$name]=$fp; done < <(
		for t in "${tools[@]}"; do read -r _ p _ <<<"$t" && printf '%s\0' "$p"; done |
			xargs -0 stat -c '%n|%i:%s:%.9Z' 2>/dev/null
	)
	for t in "${tools[@]}"; do
		read -r o p sum fp ref <<<"$t"
		now=-
		if [ "${toolstat[$p]:-}" = "$fp" ]; then
			now=$sum
		elif [ -n "${toolstat[$p]:-}" ]; then
			now=$(sha256sum "$p" | cut -d' ' -f1)
		fi
		echo "tool=$o $p $now $sum $ref"
	done
fi
if [ -f "$limits" ]; then while read -r line; do echo "limits=$line"; done <"$limits"; fi
if [ -f "$service_limits" ]; then while read -r line; do echo "sdlimits=$line"; done <"$service_limits"; fi
for k in "$@"; do
	f=/proc/sys/${k//.//}
	if [ -r "$f" ]; then
		read -r v <"$f"
		echo "sysctl=$k $v"
	else
		echo "denied=sysctl $k"
	fi
done
true
