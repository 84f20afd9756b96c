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

.PHONY: deb deb-test
deb:
	packaging/install-deps
	packaging/build-deb
deb-test: deb
	packaging/test-deb

.PHONY: fuzz
fuzz:
	fuzz/run
