#!/bin/sh
# Installs the Debian packages qblk needs to build and test, when missing.
# As root it runs apt-get; otherwise it prints the command and stops.
set -e
PKGS="meson ninja-build pkg-config gcc python3 libglib2.0-dev libjson-glib-dev
liburing-dev zlib1g-dev libzstd-dev systemtap-sdt-dev qemu-utils qemu-system-common
libnbd-bin python3-libnbd nbdkit bc libnbd-dev
ceph-mon ceph-osd ceph-common librbd-dev uuid-runtime qemu-block-extra"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "qblk needs these Debian packages:$missing" >&2
    echo "run: sudo apt-get install -y$missing" >&2
    exit 1
fi
echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq $missing >/dev/null
