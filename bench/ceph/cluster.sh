#!/usr/bin/env bash
# A throw-away one-node Ceph cluster for tests and benchmarks, everything under one directory DIR: one monitor
# (msgr v2 on 127.0.0.1, a free port), one BlueStore OSD on a sparse file, auth none, pool "rbd" with size 1, one
# RBD image, and a qemu-storage-daemon exporting that image over NBD (librbd cache off, cache.direct=on,
# discard=unmap). No manager daemon: nothing here needs one, so `ceph health` says HEALTH_WARN (no mgr).
#
# usage: bench/ceph/cluster.sh start DIR     create and start (DIR must be empty or absent); prints the export URI
#        bench/ceph/cluster.sh stop DIR      stop the daemons this script started in DIR (by their recorded pids)
#        bench/ceph/cluster.sh status DIR    which of them run, the cluster's status, the export URI
#        bench/ceph/cluster.sh export-stop DIR / export-start DIR   stop or start only the NBD export
#        bench/ceph/cluster.sh install       install the Debian packages it needs (root only)
#
# settings (environment): OSD_SIZE=8G (sparse), IMAGE=pcache, IMAGE_SIZE=1G, EXPORT=unix|tcp (unix: DIR/nbd.sock;
# tcp: 127.0.0.1 and a free port), TIMEOUT=60 (seconds for each wait). After start, DIR/ceph.conf is the cluster's
# configuration (`rbd -c DIR/ceph.conf ...`), DIR/export.uri holds the NBD URI, DIR/pids/*.pid the daemons' pids,
# DIR/log/ their logs. `stop` kills only a recorded pid whose command line names DIR, so it never stops another
# cluster; it leaves DIR in place (remove it yourself).
set -euo pipefail

PACKAGES=(ceph-mon ceph-osd ceph-common qemu-system-common qemu-block-extra uuid-runtime python3)
OSD_SIZE=${OSD_SIZE:-8G}
IMAGE=${IMAGE:-pcache}
IMAGE_SIZE=${IMAGE_SIZE:-1G}
EXPORT=${EXPORT:-unix}
TIMEOUT=${TIMEOUT:-60}
POOL=rbd

die() { echo "cluster: $*" >&2; exit 1; }

missing_packages() {
    local p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
    done
}

install() {
    command -v dpkg-query >/dev/null || die "not a Debian system: install Ceph 16 (mon, osd, common) and qemu-storage-daemon with its rbd block driver yourself"
    local missing; missing=$(missing_packages | tr '\n' ' ')
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
        die "missing packages: $missing(as root: apt-get install $missing)"
    fi
    echo "cluster: installing $missing" >&2
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
}

require_tools() {
    local tool
    for tool in ceph ceph-mon ceph-osd ceph-authtool monmaptool rbd rados qemu-storage-daemon uuidgen; do
        command -v "$tool" >/dev/null || die "$tool is not installed (bench/ceph/cluster.sh install, as root)"
    done
    [ -n "$(find /usr/lib/*/qemu /usr/lib/qemu -name 'block-rbd.so' 2>/dev/null | head -1)" ] ||
        die "qemu's rbd block driver (block-rbd.so, Debian package qemu-block-extra) is not installed"
}

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# The pid recorded as DIR/pids/$1.pid, printed only while that process runs and its command line names DIR.
live_pid() {
    local file="$dir/pids/$1.pid" pid
    [ -f "$file" ] || return 1
    pid=$(cat "$file")
    [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir/" || return 1
    echo "$pid"
}

# Starts "$@" in the background as daemon $name, logging to DIR/log/$name.out, and records its pid.
spawn() {
    local name=$1; shift
    "$@" </dev/null >"$dir/log/$name.out" 2>&1 &
    local pid=$! deadline=$((SECONDS + 10))
    echo $pid >"$dir/pids/$name.pid"
    # Until the forked shell has exec'd the daemon, its command line is this script's, which live_pid does not
    # accept: wait for the exec, so that a check right after the start does not take the daemon for dead.
    while kill -0 "$pid" 2>/dev/null && ! live_pid "$name" >/dev/null && [ $SECONDS -lt $deadline ]; do
        sleep 0.01
    done
}

# Waits until the command "$@" succeeds, at most TIMEOUT seconds; fails naming $what and the log to read.
await() {
    local what=$1 daemon=$2; shift 2
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        if [ -n "$daemon" ] && ! live_pid "$daemon" >/dev/null; then
            die "$daemon exited while waiting for $what; its log: $dir/log/$daemon.out, $dir/log/$daemon.log
$(tail -n 20 "$dir/log/$daemon.out" 2>/dev/null)"
        fi
        [ $SECONDS -lt $deadline ] || die "$what did not happen within ${TIMEOUT}s; logs in $dir/log"
        sleep 0.2
    done
}

ceph_() { ceph -c "$dir/ceph.conf" --connect-timeout 10 "$@"; }

osd_up() { ceph_ osd dump -f json | /usr/bin/python3 -c '
import json, sys
osds = json.load(sys.stdin)["osds"]
sys.exit(0 if osds and all(o["up"] == 1 and o["in"] == 1 for o in osds) else 1)'; }

export_ready() {
    if [ "$EXPORT" = unix ]; then
        [ -S "$dir/nbd.sock" ]
    else
        # qemu-storage-daemon listens before it prints nothing; the port answering is the signal.
        /usr/bin/python3 -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' \
            "$(cat "$dir/export.port")"
    fi
}

export_start() {
    [ -f "$dir/ceph.conf" ] || die "$dir holds no cluster (run: $0 start $dir)"
    live_pid qsd >/dev/null && die "the export already runs (pid $(live_pid qsd))"
    local addr
    # The transport chosen at start stays the export's transport across restarts.
    [ -f "$dir/export.transport" ] && EXPORT=$(cat "$dir/export.transport")
    if [ "$EXPORT" = unix ]; then
        rm -f "$dir/nbd.sock"
        addr="addr.type=unix,addr.path=$dir/nbd.sock"
        echo "nbd+unix:///?socket=$dir/nbd.sock" >"$dir/export.uri"
    elif [ "$EXPORT" = tcp ]; then
        [ -f "$dir/export.port" ] || free_port >"$dir/export.port"
        addr="addr.type=inet,addr.host=127.0.0.1,addr.port=$(cat "$dir/export.port")"
        echo "nbd://127.0.0.1:$(cat "$dir/export.port")" >"$dir/export.uri"
    else
        die "EXPORT must be unix or tcp, not $EXPORT"
    fi
    echo "$EXPORT" >"$dir/export.transport"
    # cache.direct=on makes qemu open the image with rbd_cache=false: a write qemu acknowledges is in RADOS.
    spawn qsd qemu-storage-daemon \
        --blockdev "driver=rbd,node-name=rbd0,pool=$POOL,image=$IMAGE,conf=$dir/ceph.conf,cache.direct=on,discard=unmap" \
        --nbd-server "$addr" \
        --export type=nbd,id=export0,node-name=rbd0,name=,writable=on
    await "the NBD export of $POOL/$IMAGE" qsd export_ready
}

stop_daemon() {  # $1 = name: SIGTERM, then SIGKILL after TIMEOUT seconds
    local pid
    pid=$(live_pid "$1") || { rm -f "$dir/pids/$1.pid"; return 0; }
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + TIMEOUT))
    while kill -0 "$pid" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ]; then
            echo "cluster: $1 (pid $pid) ignored SIGTERM for ${TIMEOUT}s; killing it" >&2
            kill -9 "$pid" 2>/dev/null || true
        fi
        sleep 0.1
    done
    rm -f "$dir/pids/$1.pid"
}

write_conf() {  # $1 = fsid, $2 = monitor port
    local osd_bytes; osd_bytes=$(numfmt --from=iec "$OSD_SIZE")
    cat >"$dir/ceph.conf" <<EOF
[global]
fsid = $1
mon host = [v2:127.0.0.1:$2]
mon initial members = a
public addr = 127.0.0.1
ms bind msgr1 = false
auth cluster required = none
auth service required = none
auth client required = none
keyring = $dir/keyring
run dir = $dir/run
log file = $dir/log/\$name.log
admin socket = $dir/run/\$name.asok
osd pool default size = 1
osd pool default min size = 1
mon allow pool size one = true
mon warn on pool no redundancy = false
osd crush chooseleaf type = 0

[mon]
mon data = $dir/mon
mon cluster log file = $dir/log/cluster.log

[osd]
osd data = $dir/osd
osd objectstore = bluestore
bluestore block path = $dir/osd-block.img
bluestore block create = true
bluestore block size = $osd_bytes
bluestore fsck on mount = false
osd memory target = 1073741824

[client]
rbd cache = false
log file = $dir/log/client.log
admin socket =
EOF
}

start() {
    if command -v dpkg-query >/dev/null; then install; fi
    require_tools
    if [ -e "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
        die "$dir is not empty: stop and remove the old cluster first ($0 stop $dir; rm -r $dir)"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    mkdir -p "$dir/mon" "$dir/osd" "$dir/run" "$dir/log" "$dir/pids"
    trap 'status=$?; [ $status -eq 0 ] || { echo "cluster: start failed; stopping what it started" >&2; stop; }' EXIT
    local began=$SECONDS fsid port
    fsid=$(uuidgen)
    port=$(free_port)
    write_conf "$fsid" "$port"
    ceph-authtool --create-keyring "$dir/keyring" --gen-key -n mon. --cap mon 'allow *' >/dev/null
    monmaptool --create --fsid "$fsid" --addv a "[v2:127.0.0.1:$port]" "$dir/monmap" >/dev/null
    ceph-mon -c "$dir/ceph.conf" -i a --mkfs --monmap "$dir/monmap" --keyring "$dir/keyring" \
        >"$dir/log/mon-mkfs.out" 2>&1 || die "ceph-mon --mkfs failed: $(cat "$dir/log/mon-mkfs.out")"
    spawn mon ceph-mon -c "$dir/ceph.conf" -i a -f
    await "the monitor's quorum" mon ceph_ quorum_status

    local uuid id
    uuid=$(uuidgen)
    id=$(ceph_ osd new "$uuid")
    [ "$id" = 0 ] || die "expected OSD id 0, got '$id'"
    ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid" >"$dir/log/osd-mkfs.out" 2>&1 ||
        die "ceph-osd --mkfs failed: $(tail -n 20 "$dir/log/osd-mkfs.out")"
    spawn osd ceph-osd -c "$dir/ceph.conf" -i 0 -f
    await "osd.0 up and in" osd osd_up

    ceph_ osd pool create "$POOL" 8 8 >/dev/null 2>&1
    ceph_ osd pool set "$POOL" size 1 --yes-i-really-mean-it >/dev/null 2>&1
    ceph_ osd pool application enable "$POOL" rbd >/dev/null 2>&1
    # rbd create writes the pool's directory object, so it completes only once the pool's PGs are active.
    timeout "$TIMEOUT" rbd -c "$dir/ceph.conf" create "$POOL/$IMAGE" --size "$IMAGE_SIZE" >"$dir/log/rbd-create.out" 2>&1 ||
        die "rbd create $POOL/$IMAGE failed or the pool's PGs did not become active within ${TIMEOUT}s: $(cat "$dir/log/rbd-create.out"); logs in $dir/log"
    export_start
    echo "cluster: up in $((SECONDS - began))s: image $POOL/$IMAGE ($IMAGE_SIZE) of $dir/ceph.conf, exported at $(cat "$dir/export.uri")" >&2
    cat "$dir/export.uri"
}

stop() {
    [ -d "$dir/pids" ] || die "$dir holds no cluster started by this script"
    stop_daemon qsd
    stop_daemon osd
    stop_daemon mon
}

status() {
    [ -d "$dir/pids" ] || die "$dir holds no cluster started by this script"
    local name pid
    for name in mon osd qsd; do
        if pid=$(live_pid "$name"); then echo "$name: running (pid $pid)"; else echo "$name: not running"; fi
    done
    if live_pid mon >/dev/null; then ceph_ -s || true; fi
    [ -f "$dir/export.uri" ] && echo "export: $(cat "$dir/export.uri")"
    live_pid mon >/dev/null && live_pid osd >/dev/null && live_pid qsd >/dev/null
}

command=${1:-}
if [ "$command" = install ]; then
    install
    exit 0
fi
[ $# -eq 2 ] || die "usage: $0 start|stop|status|export-start|export-stop DIR, or $0 install"
dir=$2
case "$command" in
    start) start ;;
    stop) dir=$(cd "$dir" 2>/dev/null && pwd) || die "no such directory: $2"; stop ;;
    status) dir=$(cd "$dir" 2>/dev/null && pwd) || die "no such directory: $2"; status ;;
    export-start) dir=$(cd "$dir" 2>/dev/null && pwd) || die "no such directory: $2"; export_start; cat "$dir/export.uri" ;;
    export-stop) dir=$(cd "$dir" 2>/dev/null && pwd) || die "no such directory: $2"; stop_daemon qsd ;;
    *) die "unknown command $command (start, stop, status, export-start, export-stop, install)" ;;
esac
