.PHONY: build release test run check bench soak
build:
	swift build
release:
	scripts/build-release
test:
	scripts/test
run:
	scripts/run
check: build
	.build/debug/tailgate check --config conf/tailgate.toml
bench: release
	bench/run
# SOAK_ARGS="--connections 20000 --gib 1" for a shorter run
soak: release
	bench/install-deps
	bench/soak.py $(SOAK_ARGS)

.PHONY: deb deb-test boot-test
deb:
	packaging/install-deps
	packaging/build-deb
deb-test: deb
	packaging/test-deb
# Boots the newest dist/tailgate_*.deb (make deb first) in a Debian 12 container; as root.
# BOOT_TEST_DEBS="old.deb new.deb" for other packages (the upgrade scenario repacks the first as +boot1 otherwise).
boot-test:
	packaging/install-deps
	packaging/boot-test $(BOOT_TEST_DEBS)

.PHONY: fuzz
fuzz:
	fuzz/run
