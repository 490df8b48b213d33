# minirunc: build, demo, tests, benchmarks. Containers need root: sudo make demo, sudo make test.
# Every entry point that runs containers starts with `setup`, which installs what is missing (apt-get).

CARGO ?= cargo
# sudo resets PATH; rustup installs cargo for root in ~/.cargo/bin.
export PATH := $(PATH):/root/.cargo/bin:$(HOME)/.cargo/bin

RUNTIME ?= $(CURDIR)/target/release/minirunc
RUNC ?= /usr/sbin/runc
ROOTFS := bundle-examples/rootfs
BUNDLE_TEST := integration/bundle-test
INTEGRATION_SUITES := integration/containerd/run.sh integration/shim/run.sh integration/podman/run.sh integration/docker/run.sh integration/cgroupv2-vm/run.sh

# The test steps run in the order written, even under make -j.
.NOTPARALLEL:
.PHONY: all setup build rootfs demo test test-unit lint fuzz test-harness test-bundles test-compare test-integration \
	leak-check bench clean

all: build

setup:
	@scripts/setup.sh

build:
	$(CARGO) build --release

rootfs: $(ROOTFS)/bin/busybox

$(ROOTFS)/bin/busybox: scripts/mkrootfs.sh
	scripts/mkrootfs.sh $(ROOTFS)

demo: setup build rootfs
	RUNTIME=$(RUNTIME) scripts/demo.sh

# The one command that runs everything (what .ci/run calls): each step below, with a summary line
# per suite at the end (scripts/test.sh).
test:
	@RUNTIME=$(RUNTIME) scripts/test.sh

# A bound on the whole step, beyond the per-command watchdog of the tests: a hang must fail the
# run with a message, not eat CI's time.
test-unit:
	timeout --kill-after=30 1800 $(CARGO) test --release

# Bounded cargo-fuzz runs of the config and command-line parsers.
fuzz:
	scripts/fuzz.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The harness must catch failures (timeouts, wrong output, leftovers): checked against runc.
test-harness: rootfs
	integration/harness-selftest/run $(RUNC)

test-bundles: rootfs
	$(BUNDLE_TEST) --runtime $(RUNTIME) bundle-examples

test-compare: rootfs
	$(BUNDLE_TEST) --runtime $(RUNTIME) --compare $(RUNC) bundle-examples

test-integration:
	@for suite in $(INTEGRATION_SUITES); do \
		echo "== $$suite"; RUNTIME=$(RUNTIME) $$suite || exit 1; \
	done

leak-check:
	integration/leak-check.sh

bench: setup build rootfs
	@if [ -x bench/run.sh ]; then RUNTIME=$(RUNTIME) bench/run.sh; else echo "bench/run.sh: not present"; fi

clean:
	$(CARGO) clean
	rm -rf build $(ROOTFS)
