.PHONY: build release test run check
build:
	swift build
release:
	swift build -c release --product tailgate
test:
	scripts/test
run:
	scripts/run
check: build
	.build/debug/tailgate check --config conf/tailgate.toml

.PHONY: deb deb-test
deb:
	packaging/install-deps
	packaging/build-deb
deb-test: deb
	packaging/test-deb
