# minirunc: build, demo, tests, benchmarks. Containers need root: sudo make demo, sudo make test.
# Every entry point that runs containers starts with `setup`, which installs what is missing (apt-get).

CARGO ?= cargo
# sudo resets PATH; rustup installs cargo for root in ~/.cargo/bin.
export PATH := $(PATH):/root/.cargo/bin:$(HOME)/.cargo/bin

RUNTIME ?= $(CURDIR)/target/x86_64-unknown-linux-gnu/release/minirunc
RUNC ?= /usr/sbin/runc
ROOTFS := bundle-examples/rootfs
BUNDLE_TEST := integration/bundle-test
INTEGRATION_SUITES := integration/containerd/run.sh integration/shim/run.sh integration/podman/run.sh integration/podman/rootless.sh integration/docker/run.sh integration/cgroupv2-vm/run.sh

# make install / make uninstall (GNU conventions: PREFIX, DESTDIR, and each directory on its own).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
DOCDIR ?= $(PREFIX)/share/doc/minirunc
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# What install wrote, for uninstall to remove exactly that (scripts/install.sh).
MANIFEST ?= $(PREFIX)/share/minirunc/install-manifest
DOCS := target/docs
CLIENT_CONFIGS := integration/docker/daemon.json integration/containerd/config.toml \
	integration/podman/containers.conf
export DESTDIR BINDIR DOCDIR BASHCOMPDIR ZSHCOMPDIR FISHCOMPDIR MANIFEST DOCS CLIENT_CONFIGS
export MAN8DIR := $(MANDIR)/man8
export BIN := target/x86_64-unknown-linux-gnu/release/minirunc
export SHIM_BIN := target/x86_64-unknown-linux-gnu/release/containerd-shim-minirunc-v1

# The test steps run in the order written, even under make -j.
.NOTPARALLEL:
.PHONY: all setup build rootfs demo test test-unit lint fuzz test-harness test-bundles test-compare test-compare-rootless rootless-user test-integration \
	leak-check bench hot-order clean docs install uninstall test-install deb

all: build

setup:
	@scripts/setup.sh

build:
	$(CARGO) build --release

# Man pages (section 8) and bash/zsh/fish completions from the command-line definition
# (src/cli.rs), by examples/gen_docs.rs: its crates are dev-dependencies, not in the runtime.
docs:
	$(CARGO) run --release --example gen_docs -- $(DOCS)

install: build docs
	scripts/install.sh install

uninstall:
	scripts/install.sh uninstall

# A Debian package from the install at Debian's places (scripts/deb.sh): target/deb/minirunc_*.deb.
DEB_OUT := target/deb
deb: build docs
	rm -rf $(DEB_OUT)/stage
	DESTDIR=$(CURDIR)/$(DEB_OUT)/stage BINDIR=/usr/bin MAN8DIR=/usr/share/man/man8 \
		BASHCOMPDIR=/usr/share/bash-completion/completions \
		ZSHCOMPDIR=/usr/share/zsh/vendor-completions \
		FISHCOMPDIR=/usr/share/fish/vendor_completions.d DOCDIR=/usr/share/doc/minirunc \
		MANIFEST= scripts/install.sh install
	scripts/deb.sh $(DEB_OUT)/stage $(DEB_OUT)

# make deb, then install and purge it with apt-get in a throwaway root (the host is untouched).
test-deb:
	scripts/test-deb.sh

# install into a temp DESTDIR: pages render, completions load, uninstall leaves it empty.
test-install:
	scripts/test-install.sh

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
	$(CARGO) fmt --check --manifest-path integration/cri-client/Cargo.toml
	$(CARGO) clippy --all-targets -- -D warnings

# The harness must catch failures (timeouts, wrong output, leftovers): checked against runc.
test-harness: rootfs rootless-user
	integration/harness-selftest/run $(RUNC)

test-bundles: rootfs
	$(BUNDLE_TEST) --runtime $(RUNTIME) bundle-examples

test-compare: rootfs
	$(BUNDLE_TEST) --runtime $(RUNTIME) --compare $(RUNC) bundle-examples

# The unprivileged test user, made if missing as tests/common/user.rs does.
ROOTLESS_USER := minirunc-rootless
rootless-user:
	@id $(ROOTLESS_USER) >/dev/null 2>&1 || useradd --no-create-home --shell /usr/sbin/nologin $(ROOTLESS_USER)

# The bundles in their rootless forms run as that user, runc rootless as the oracle.
test-compare-rootless: rootfs rootless-user
	$(BUNDLE_TEST) --runtime $(RUNTIME) --compare $(RUNC) --as-user $(ROOTLESS_USER) bundle-examples

test-integration:
	@for suite in $(INTEGRATION_SUITES); do \
		echo "== $$suite"; RUNTIME=$(RUNTIME) $$suite || exit 1; \
	done

leak-check:
	integration/leak-check.sh

bench: setup build rootfs
	@if [ -x bench/run.sh ]; then RUNTIME=$(RUNTIME) bench/run.sh; else echo "bench/run.sh: not present"; fi

# Rewrite link/hot.order (the functions laid out first in .text) by tracing the hot path.
hot-order: setup build rootfs
	MINIRUNC=$(RUNTIME) bench/hot-order.sh

clean:
	$(CARGO) clean
	rm -rf build $(ROOTFS)
