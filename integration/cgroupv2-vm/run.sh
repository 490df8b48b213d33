#!/bin/bash
# cgroup v2 suite: the runtime under test on a pure cgroup v2 host, which the development and CI
# machines (hybrid cgroups) are not. Boots Debian's kernel in a KVM guest (qemu) whose initramfs
# holds busybox, the runtime and its libraries, a busybox bundle rootfs and scenarios.sh; the
# guest's /init (init) mounts cgroup2 alone at /sys/fs/cgroup, runs the scenarios and powers off.
# This script reads the PASS/FAIL lines from the serial console.
# Usage (as root): RUNTIME=/abs/path/to/minirunc integration/cgroupv2-vm/run.sh
# Environment: SCENARIOS=REGEX (passed to the guest), VM_TIMEOUT (seconds, default 180),
# SERIAL_LOG=FILE (keep the guest's console output there),
# MINIRUNC_TEST_CACHE (default /var/cache/minirunc-test: the extracted kernel, kept across runs).
# When the host lacks what a VM needs (qemu, the kernel package) it skips, or fails under CI=true.
set -u

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
# shellcheck source=../lib/common.sh
. "$top/integration/lib/common.sh"
# shellcheck source=../../scripts/lib/cannot-run.sh
. "$top/scripts/lib/cannot-run.sh"

require_runtime cgroupv2-vm
suite_start=$EPOCHREALTIME
VM_TIMEOUT=${VM_TIMEOUT:-180}
# Outside the work tree: the kernel is the same for every checkout, survives `make clean` and a
# fresh clone (CI), and is no build output of the project.
CACHE=${MINIRUNC_TEST_CACHE:-/var/cache/minirunc-test}

# Seconds between two $EPOCHREALTIME values, to 0.1 s.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# VM_ACCEL=kvm|tcg, default kvm where it can run Debian's kernel. The development and CI machines'
# /dev/kvm is PVM (module kvm_pvm, nested virtualization by paravirtualised page tables): it boots
# only guest kernels built for PVM, and a stock kernel hangs right after its real-mode setup. There
# (and without /dev/kvm) qemu emulates the CPU with TCG instead: slower, but the same guest.
if [ -z "${VM_ACCEL:-}" ]; then
    if [ -d /sys/module/kvm_pvm ]; then
        VM_ACCEL=tcg
        log "accel: tcg (/dev/kvm is kvm_pvm, which cannot boot a stock kernel)"
    elif [ -c /dev/kvm ] && ( : <>/dev/kvm ) 2>/dev/null; then
        VM_ACCEL=kvm
    else
        VM_ACCEL=tcg
        log "accel: tcg (no usable /dev/kvm)"
    fi
fi
case $VM_ACCEL in
    kvm) accel_args=(-enable-kvm -cpu host) ;;
    tcg) accel_args=(-accel tcg) ;;
    *) echo "VM_ACCEL must be kvm or tcg, got '$VM_ACCEL'" >&2; exit 2 ;;
esac

# qemu-system-x86 must come from the same suite as the qemu packages already installed: a machine
# image may carry qemu-utils from bookworm-backports, next to which Debian 12's own qemu-system-x86
# is refused (qemu-utils Breaks qemu-system-common older than 8.0). Backports are then added to
# apt's sources if missing and qemu is installed from there.
install_qemu() {
    local codename target=()
    if dpkg-query -W -f='${db:Status-Abbrev} ${Version}\n' 'qemu-*' 2>/dev/null | grep -q '^ii .*~bpo'; then
        codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
        target=(-t "$codename-backports")
        if ! apt-cache policy 2>/dev/null | grep -q " $codename-backports/main "; then
            log "adding $codename-backports to apt's sources (the installed qemu packages come from there)"
            printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s-backports\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
                "$codename" >/etc/apt/sources.list.d/minirunc-test-backports.sources
            apt-get update -qq >/dev/null 2>&1
        fi
    fi
    log "installing qemu-system-x86${target[*]:+ from ${target[1]}}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${target[@]}" \
        qemu-system-x86 >"$1" 2>&1 ||
        { apt-get update -qq >/dev/null 2>&1 &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${target[@]}" qemu-system-x86 >"$1" 2>&1; }
}
if ! command -v qemu-system-x86_64 >/dev/null; then
    apt_log=$(mktemp)
    install_qemu "$apt_log"
    apt_errors=$(grep -E '^(E:| )' "$apt_log" | head -5 | tr '\n' ' ')
    rm -f "$apt_log"
    command -v qemu-system-x86_64 >/dev/null || cannot_run "cannot install qemu-system-x86: $apt_errors"
fi
ensure_packages busybox:busybox-static jq:jq containerd:containerd ctr:containerd
if [ ! -x /bin/busybox ] || ! command -v jq >/dev/null; then cannot_run "cannot install busybox-static and jq"; fi
SHIM=$(dirname "$RUNTIME")/containerd-shim-minirunc-v1

# The kernel linux-image-amd64 depends on (e.g. linux-image-6.1.0-56-amd64), downloaded, never
# installed: only its vmlinuz and the modules the guest loads are kept, in $CACHE/<package>/.
# overlay: minirunc's copy-on-write root; loop: a block device for the io controller's files.
MODULES="fs/overlayfs/overlay drivers/block/loop"
kernel_package() {
    apt-cache depends linux-image-amd64 2>/dev/null |
        awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}
kernel_cached() { # DIR
    local m
    [ -s "$1/vmlinuz" ] || return 1
    for m in $MODULES; do [ -s "$1/${m##*/}.ko" ] || return 1; done
}
fetch_kernel() { # PACKAGE DIR
    local tmp deb m ko patterns=()
    tmp=$(mktemp -d "$CACHE/fetch.XXXXXX")
    # apt's _apt user must be able to write the download directory.
    chown _apt "$tmp" 2>/dev/null
    (cd "$tmp" && apt-get download -qq "$1" >/dev/null 2>&1) || { rm -rf "$tmp"; return 1; }
    deb=$(echo "$tmp"/*.deb)
    for m in $MODULES; do patterns+=("*/kernel/$m.ko*"); done
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' "${patterns[@]}" ||
        { rm -rf "$tmp"; return 1; }
    for m in $MODULES; do
        ko=$(find "$tmp" -path "*/kernel/$m.ko*" | head -1)
        case $ko in
            *.ko.xz) xz -dc "$ko" >"$tmp/${m##*/}.ko" ;;
            *.ko.zst) zstd -qdc "$ko" >"$tmp/${m##*/}.ko" ;;
            *.ko) mv "$ko" "$tmp/${m##*/}.ko" ;;
            *) echo "no $m.ko in $deb" >&2; rm -rf "$tmp"; return 1 ;;
        esac
        # busybox insmod loads no dependencies: the module must have none.
        if grep -aq 'depends=[a-z]' "$tmp/${m##*/}.ko"; then
            echo "$m.ko of $1 depends on other modules" >&2
            rm -rf "$tmp"
            return 1
        fi
    done
    mv "$tmp"/boot/vmlinuz-* "$tmp/vmlinuz"
    stat -c %s "$deb" >"$tmp/deb-bytes"
    rm -rf "$deb" "${tmp:?}/boot" "${tmp:?}/lib" "${tmp:?}/usr"
    rm -rf "$2"
    mv "$tmp" "$2"
}
mkdir -p "$CACHE"
KERNEL_PKG=$(kernel_package)
if [ -z "$KERNEL_PKG" ]; then
    apt-get update -qq >/dev/null 2>&1
    KERNEL_PKG=$(kernel_package)
fi
if [ -z "$KERNEL_PKG" ]; then
    # No package lists (offline): the newest kernel already cached, if any.
    KERNEL_PKG=$(find "$CACHE" -mindepth 2 -maxdepth 2 -name vmlinuz -path '*/linux-image-*' |
        sort -V | tail -1 | xargs -r dirname | xargs -r basename)
fi
[ -n "$KERNEL_PKG" ] || cannot_run "cannot download linux-image: no linux-image-amd64 in the package lists"
KERNEL_DIR=$CACHE/$KERNEL_PKG
kernel_source="cached in $KERNEL_DIR"
if ! kernel_cached "$KERNEL_DIR"; then
    fetch_kernel "$KERNEL_PKG" "$KERNEL_DIR" || cannot_run "cannot download linux-image ($KERNEL_PKG)"
    kernel_source="downloaded to $KERNEL_DIR ($(($(cat "$KERNEL_DIR/deb-bytes") / 1000000)) MB .deb)"
fi
log "kernel: $KERNEL_PKG, $kernel_source"

SUITE_DIR=$(mktemp -d /tmp/mrt-v2vm.XXXXXX)
QEMU_PID=""
cleanup() {
    trap - EXIT INT TERM
    if [ -n "$QEMU_PID" ]; then kill -KILL "$QEMU_PID" 2>/dev/null; wait "$QEMU_PID" 2>/dev/null; fi
    rm -rf "$SUITE_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

STAGE=$SUITE_DIR/initramfs

# copy_with_libs BINARY DEST: BINARY at DEST in the initramfs, with the shared libraries and the
# loader ldd names, at their host paths.
copy_with_libs() {
    local lib
    mkdir -p "$STAGE$(dirname "$2")"
    cp -L "$1" "$STAGE$2"
    for lib in $(ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
        [ -e "$STAGE$lib" ] && continue
        mkdir -p "$STAGE$(dirname "$lib")"
        cp -L "$lib" "$STAGE$lib"
    done
}

build_initramfs() {
    local applet
    mkdir -p "$STAGE"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,newroot,etc,lib/modules,suite}
    cp /bin/busybox "$STAGE/bin/busybox"
    for applet in $(/bin/busybox --list-full); do
        [ -e "$STAGE/$applet" ] || ln -s /bin/busybox "$STAGE/$applet"
    done
    # The kernel opens /dev/console for init before anything is mounted.
    mknod "$STAGE/dev/console" c 5 1
    copy_with_libs "$RUNTIME" /usr/local/bin/minirunc
    # The scenarios use lib/common.sh: bash, jq, and GNU tail (--pid, which busybox lacks).
    copy_with_libs /bin/bash /usr/local/bin/bash
    copy_with_libs "$(command -v jq)" /usr/local/bin/jq
    copy_with_libs "$(command -v tail)" /usr/local/bin/tail
    # busybox's timeout would run its own tail applet, whatever PATH says.
    copy_with_libs "$(command -v timeout)" /usr/local/bin/timeout
    # containerd-oom: Debian's containerd and ctr, and the shim built beside the runtime (it runs
    # the minirunc beside itself); the guest skips the scenario without them.
    if [ -x "$SHIM" ] && command -v containerd >/dev/null && command -v ctr >/dev/null; then
        copy_with_libs "$SHIM" /usr/local/bin/containerd-shim-minirunc-v1
        copy_with_libs "$(command -v containerd)" /usr/local/bin/containerd
        copy_with_libs "$(command -v ctr)" /usr/local/bin/ctr
    fi
    cp "$KERNEL_DIR"/*.ko "$STAGE/lib/modules/"
    BUSYBOX=/bin/busybox "$top/scripts/mkrootfs.sh" "$STAGE/suite/rootfs"
    cp "$top/integration/lib/common.sh" "$here/scenarios.sh" "$here/containerd.toml" "$STAGE/suite/"
    printf 'SCENARIOS=%q\n' "${SCENARIOS:-}" >"$STAGE/suite/env"
    install -m 755 "$here/init" "$STAGE/init"
    (cd "$STAGE" && find . | /bin/busybox cpio -o -H newc 2>/dev/null) | gzip -1 >"$SUITE_DIR/initramfs.gz"
}

build_initramfs || { echo "FAIL: initramfs build"; exit 1; }
log "initramfs: $(($(stat -c %s "$SUITE_DIR/initramfs.gz") / 1000)) kB"

SERIAL=$SUITE_DIR/serial.log
vm_start=$EPOCHREALTIME
timeout -k 5 "$VM_TIMEOUT" qemu-system-x86_64 "${accel_args[@]}" -smp 1 -m 1024 -nographic \
    -no-reboot -nic none -kernel "$KERNEL_DIR/vmlinuz" -initrd "$SUITE_DIR/initramfs.gz" \
    -append "console=ttyS0 quiet panic=-1" </dev/null >"$SERIAL" 2>"$SUITE_DIR/qemu.err" &
QEMU_PID=$!
wait "$QEMU_PID"
qemu_rc=$?
QEMU_PID=""
vm_end=$EPOCHREALTIME
output=$(tr -d '\r' <"$SERIAL")
[ -z "${SERIAL_LOG:-}" ] || printf '%s\n' "$output" >"$SERIAL_LOG"

if [ "$VM_ACCEL" = kvm ] && ! printf '%s\n' "$output" | grep -q 'BOOTED uptime=' &&
    grep -qiE 'could not access KVM|failed to initiali[sz]e kvm' "$SUITE_DIR/qemu.err"; then
    cannot_run "KVM unusable: $(head -3 "$SUITE_DIR/qemu.err")"
fi

# The guest's scenario lines, with the output of failed ones.
printf '%s\n' "$output" | grep -E '^(PASS|FAIL|SKIP): |^    \| |^failed:|\(in the VM\):'
PASSED=$(printf '%s\n' "$output" | grep -c '^PASS: ')
FAILED=$(printf '%s\n' "$output" | grep -c '^FAIL: ')
FAILED_NAMES=$(printf '%s\n' "$output" | sed -n 's/^FAIL: \([^ ]*\).*/ \1;/p' | tr -d '\n')
end_line=$(printf '%s\n' "$output" | grep '^MINIRUNC-V2VM-END ' | tail -1)
problem=""
if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
    problem="the VM timed out after ${VM_TIMEOUT}s"
elif [ -z "$end_line" ]; then
    problem="the VM stopped without the end marker (qemu exit $qemu_rc)"
elif [ $((PASSED + FAILED)) -eq 0 ]; then
    problem="no scenario ran"
fi
if [ -n "$problem" ]; then
    record vm "$problem; last lines of the serial console:
$(printf '%s\n' "$output" | tail -30)
$(cat "$SUITE_DIR/qemu.err")"
fi

# SeaBIOS's screen clearing escapes precede the first line.
boot=$(printf '%s\n' "$output" | sed -n 's/.*BOOTED uptime=\([0-9.]*\).*/\1/p')
guest_end=$(printf '%s\n' "$end_line" | sed -n 's/.* uptime=\([0-9.]*\).*/\1/p')
echo "timing: guest boot to /init stage 2 ${boot:-?}s (guest clock), scenarios until" \
    "${guest_end:-?}s, VM run $(elapsed "$vm_start" "$vm_end")s, suite $(elapsed "$suite_start" "$EPOCHREALTIME")s" \
    "(kernel $KERNEL_PKG)"
summary cgroupv2-vm
