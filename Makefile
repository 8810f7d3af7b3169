# Quick start: `make demo` trains a small GPT on the bundled corpus; `make test` runs the tests.
.PHONY: demo test build

demo:
	bash scripts/demo.sh

test:
	swift test --no-parallel

build:
	swift build -c release
