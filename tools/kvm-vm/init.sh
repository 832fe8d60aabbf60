#!/bin/sh
# /init of the vmlwc kvm-vm initramfs (busybox sh). Runs inside the QEMU guest.
# Host side: tools/kvm-vm/run-in-vm. Protocol: the host shares a control
# directory (9p tag "vmctl") holding config.sh + cmd.sh; the guest writes the
# command's exit status to vmctl/status and powers off.
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
case " $(cat /proc/cmdline) " in *" vmlwc.verbose "*) VERBOSE=1 ;; *) VERBOSE= ;; esac
log() { [ -z "$VERBOSE" ] || echo "init: [$(cut -d' ' -f1 /proc/uptime)] $*" >/dev/console; }
log start

fail() {
	echo "vmlwc-kvm-vm init: $*" >/dev/console
	[ -d /ctl ] && echo 125 >/ctl/status 2>/dev/null
	sync
	poweroff -f
}

load() { # load module by basename with optional params; builtin/loaded is ok
	m=$1; shift
	f=$(find /modules -name "$m.ko" | head -n1)
	[ -n "$f" ] || fail "module $m.ko missing from initramfs"
	out=$(insmod "$f" "$@" 2>&1) || case "$out" in
		*"File exists"*) ;;
		*) fail "insmod $m $*: $out" ;;
	esac
}

for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
	 9pnet 9pnet_virtio netfs fscache 9p; do
	load $m
done

log "virtio/9p modules loaded"
P9="trans=virtio,version=9p2000.L,msize=512000"
mkdir -p /ctl /mnt
mount -t 9p -o "$P9,cache=none" vmctl /ctl || fail "mount vmctl failed"
. /ctl/config.sh || fail "cannot read config.sh"

log "vmctl mounted"
load irqbypass
load ccp
load kvm $VMLWC_KVM_PARAMS
load kvm_amd $VMLWC_KVM_AMD_PARAMS
[ -e /dev/kvm ] || mknod /dev/kvm c 10 232

log "kvm modules loaded"
mount -t 9p -o "$P9,${VMLWC_ROOT_OPTS:-ro,cache=loose}" hostroot /mnt || fail "mount hostroot failed"
mount -t proc proc /mnt/proc
mount -t sysfs sysfs /mnt/sys
mount -t devtmpfs devtmpfs /mnt/dev
mkdir -p /mnt/dev/pts /mnt/dev/shm
mount -t devpts devpts /mnt/dev/pts
mount -t tmpfs tmpfs /mnt/dev/shm
mount -t tmpfs -o mode=1777 tmpfs /mnt/tmp
mount -t tmpfs -o mode=755 tmpfs /mnt/run
i=0
for d in $VMLWC_RW_DIRS; do
	mkdir -p "/mnt$d" 2>/dev/null
	mount -t 9p -o "$P9,cache=mmap" "rw$i" "/mnt$d" || fail "mount rw$i at $d failed"
	i=$((i + 1))
done
mkdir -p /mnt/run/vmlwc-ctl
mount --bind /ctl /mnt/run/vmlwc-ctl

# loopback, for tests that talk to themselves over 127.0.0.1
ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up 2>/dev/null

# ttyS0 = command stdout, ttyS1 = console + command stderr; no CR insertion.
exec 3>/dev/ttyS0 4>/dev/ttyS1
stty -opost <&3
stty -opost <&4
log "running command"
chroot /mnt /usr/bin/env -i /bin/bash /run/vmlwc-ctl/cmd.sh </dev/null >&3 2>&4
echo $? >/ctl/status
log "command exited"
exec 3>&- 4>&-   # last close of the ttys waits for the UART to drain
echo 0 >/proc/sys/kernel/printk  # silence "reboot: Power down"
sync
poweroff -f
