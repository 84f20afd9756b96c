.PHONY: build release test run check bench
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

.PHONY: deb deb-test
deb:
	packaging/install-deps
	packaging/build-deb
deb-test: deb
	packaging/test-deb

.PHONY: fuzz
fuzz:
	fuzz/run
