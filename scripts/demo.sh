#!/bin/bash
# `make demo`: the main job on a small image it makes itself — write a
# pattern, then `write -z` a range, and show the file staying sparse.
set -e
BUILD=${1:-build}
QIO=$BUILD/qblk-io
QIMG=$BUILD/qblk-img
dir=$(mktemp -d /tmp/qblk-demo.XXXXXX)
trap 'rm -rf "$dir"' EXIT
img=$dir/demo.raw

run() {
    local a shown="\$"
    for a in "$@"; do
        case $a in *[\ \"]*) shown+=" '$a'" ;; *) shown+=" $a" ;; esac
    done
    echo "$shown"; "$@"; echo
}
blocks() { echo "  file size $(stat -c %s "$img") bytes, allocated on disk: $(( $(stat -c %b "$img") * $(stat -c %B "$img") / 1024 )) KiB"; }

echo "== qblk demo: efficient zeroes on a raw image =="
run "$QIMG" create -f raw "$img" 4G
blocks
run "$QIO" -f raw -c "write -P 0xab 0 64M" "$img"
blocks
echo "Zero 60 MiB of it with one write -z (fallocate, metadata only):"
run "$QIO" -f raw -c "write -z -u 4M 60M" -c "read -P 0xab 0 4M" -c "read -P 0 4M 60M" "$img"
blocks
echo "One write -z request of the whole 4 GiB image (qemu-io caps a request at 2 GiB):"
run "$QIO" -f raw -c "write -z -u 0 4G" -c "map" "$img"
blocks
run "$QIMG" info "$img"

echo "== QED over a raw backing file: copy-on-read stores zero clusters =="
base=$dir/base.raw
top=$dir/top.qed
run "$QIMG" create -f raw "$base" 64M
# The backing file: 4 MiB of data, then zeroes, then 1 MiB of data.
"$QIO" -f raw -c "write -P 0x11 0 4M" -c "write -P 0x22 32M 1M" "$base" >/dev/null
run "$QIMG" create -f qed -b "$base" -F raw "$top" 64M
echo "Read the whole image once with copy-on-read (-C): the data is copied up,"
echo "the zeroes become zero clusters (metadata only):"
run "$QIO" -f qed -C -c "read -P 0x11 0 4M" -c "read 0 64M" "$top"
run "$QIMG" map "$top"
echo "  top image allocated on disk: $(( $(stat -c %b "$top") * $(stat -c %B "$top") / 1024 )) KiB for 5 MiB of data"
run "$QIMG" check "$top"
echo "Zero 4 MiB of copied data: the clusters' space goes back to the host:"
run "$QIO" -f qed -c "write -z 0 4M" -c "read -P 0 0 4M" "$top"
echo "  top image allocated on disk: $(( $(stat -c %b "$top") * $(stat -c %B "$top") / 1024 )) KiB"
run "$QIMG" check "$top"

echo "== qcow2: zero clusters, compressed clusters, check =="
q=$dir/demo.qcow2
run "$QIMG" create -f qcow2 "$q" 1G
run "$QIO" -f qcow2 -c "write -P 0x33 0 8M" -c "write -c -P 0x44 8M 1M" "$q"
echo "Zero 4 MiB: the clusters keep their place with the zero flag (no data written);"
echo "with -u they are freed and reused by the next allocation:"
run "$QIO" -f qcow2 -c "write -z 0 2M" -c "write -z -u 2M 2M" -c "read -P 0 0 4M" -c "read -P 0x44 8M 1M" "$q"
run "$QIMG" map --output=json "$q"
run "$QIMG" check "$q"
run "$QIMG" info "$q"


echo "== qblk-img rebase, measure, convert =="
nb=$dir/demo-new.qcow2
run "$QIMG" create -f qcow2 "$nb" 1G
run "$QIMG" create -f qcow2 -b "$q" -F qcow2 "$dir/demo-top.qcow2"
echo "Rebase onto an empty image: only what reads differently is copied in (the"
echo "old backing file's zero clusters read like the empty image: nothing to copy):"
run "$QIMG" rebase -b "$nb" -F qcow2 "$dir/demo-top.qcow2"
run "$QIMG" map --output=json "$dir/demo-top.qcow2"
run "$QIMG" measure -O qcow2 "$dir/demo-top.qcow2"
run "$QIMG" convert -O qed "$dir/demo-top.qcow2" "$dir/demo.qed"
run "$QIMG" compare "$dir/demo-top.qcow2" "$dir/demo.qed"

echo "== qblk-storage-daemon: stream a backing file into a running overlay =="
QSD=$BUILD/qblk-storage-daemon
sbase=$dir/stream-base.raw
stop=$dir/stream-top.qed
sock=$dir/qmp.sock
"$QIMG" create -f raw "$sbase" 64M >/dev/null
# The base: 8 MiB of data, 8 MiB of written zeroes, 1 MiB of data at 48 MiB.
"$QIO" -f raw -c "write -P 0x5a 0 8M" -c "write -P 0 8M 8M" -c "write -P 0x11 48M 1M" \
    "$sbase" >/dev/null
run "$QIMG" create -f qed -b "$sbase" -F raw "$stop"
run "$QIMG" map "$stop"
run "$QSD" --daemonize --pidfile "$dir/qsd.pid" \
    --blockdev "driver=qed,node-name=top,file.driver=file,file.filename=$stop" \
    --chardev "socket,id=mon0,path=$sock,server=on,wait=off" --monitor chardev=mon0
echo "A QMP client asks for the stream and waits for its end; the daemon keeps serving:"
run scripts/qmp-client.py "$sock" \
    '{"execute": "block-stream", "arguments": {"job-id": "s1", "device": "top"}}' \
    --wait BLOCK_JOB_COMPLETED '{"execute": "query-named-block-nodes", "arguments": {"flat": true}}' \
    '{"execute": "quit"}' | grep -v '"return": \[{'
for _ in $(seq 50); do [ -e "$dir/qsd.pid" ] || break; sleep 0.1; done
echo "After the stream the overlay stands alone: data copied, the written zeroes stored"
echo "as zero clusters (no data), the backing link cut:"
run "$QIMG" map "$stop"
echo "  overlay allocated on disk: $(( $(stat -c %b "$stop") * $(stat -c %B "$stop") / 1024 )) KiB for 9 MiB of data"
run "$QIMG" compare "$sbase" "$stop"
run "$QIMG" check "$stop"

echo "== guest copy-on-read over NBD: a client's reads fill the overlay =="
gtop=$dir/guest-top.qed
nsock=$dir/nbd.sock
run "$QIMG" create -f qed -b "$sbase" -F raw "$gtop"
run "$QSD" --daemonize --pidfile "$dir/qsd.pid" \
    --blockdev "driver=qed,node-name=top,file.driver=file,file.filename=$gtop" \
    --blockdev driver=copy-on-read,node-name=cor,file=top \
    --nbd-server "addr.type=unix,addr.path=$nsock" \
    --export type=nbd,id=e0,node-name=cor,name=disk,allocation-depth=on \
    --chardev "socket,id=mon0,path=$sock,server=on,wait=off" --monitor chardev=mon0
echo "An NBD client (nbdcopy, as a guest would) reads the whole disk once:"
run nbdcopy "nbd+unix:///disk?socket=$nsock" null:
run nbdinfo --map=qemu:allocation-depth "nbd+unix:///disk?socket=$nsock"
run scripts/qmp-client.py "$sock" '{"execute": "query-block-exports"}' '{"execute": "quit"}'
for _ in $(seq 50); do [ -e "$dir/qsd.pid" ] || break; sleep 0.1; done
echo "Every range is now in the overlay (\"local\" above), the zeroes as zero clusters (map lists data only):"
run "$QIMG" map "$gtop"
echo "  overlay allocated on disk: $(( $(stat -c %b "$gtop") * $(stat -c %B "$gtop") / 1024 )) KiB for 9 MiB of data"
run "$QIMG" compare "$sbase" "$gtop"
