#!/bin/sh
# First process of a lab host, already inside the host's network namespace and its own PID,
# mount and UTS namespaces (started by `ip netns exec NS unshare --fork --pid --mount --uts`).
# It assembles the host's root filesystem, an overlay on the shared read-only Debian base,
# and hands over to govctl-init. Everything it mounts lives and dies with the host.
set -eu
base=$1 upper=$2 work=$3 root=$4 name=$5
mount -t overlay overlay -o "lowerdir=$base,upperdir=$upper,workdir=$work" "$root"
mount -t proc proc "$root/proc"
mount -t sysfs -o ro sysfs "$root/sys"
mount -t tmpfs -o mode=755,size=16m tmpfs "$root/dev"
for node in null zero full random urandom tty; do
    touch "$root/dev/$node"
    mount --bind "/dev/$node" "$root/dev/$node"
done
mkdir -p "$root/dev/pts" "$root/dev/shm"
mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$root/dev/pts"
ln -s pts/ptmx "$root/dev/ptmx"
ln -s /proc/self/fd "$root/dev/fd"
ln -s /proc/self/fd/0 "$root/dev/stdin"
ln -s /proc/self/fd/1 "$root/dev/stdout"
ln -s /proc/self/fd/2 "$root/dev/stderr"
mount -t tmpfs -o mode=1777 tmpfs "$root/dev/shm"
mount -t tmpfs -o mode=755 tmpfs "$root/run"
hostname "$name"
exec chroot "$root" /usr/local/sbin/govctl-init
