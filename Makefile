# Convenience wrapper around meson/ninja. The two set-up commands of
# README.md: `make demo` and `make check`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?= -Dwerror=true

.PHONY: all deps build build-asan check demo bench clean

all: build

deps:
	@scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

$(ASAN_BUILD)/build.ninja:
	CC=$${CC:-gcc} meson setup $(ASAN_BUILD) $(MESON_OPTS) -Db_sanitize=address,undefined \
	    -Db_lundef=false -Dbuildtype=debug -Dc_args=-fno-sanitize-recover=all

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(ASAN_BUILD)/build.ninja
	ninja -C $(ASAN_BUILD)

check: build build-asan
	@scripts/run-tests.sh $(BUILD) $(ASAN_BUILD)

demo: build
	@scripts/demo.sh $(BUILD)

bench: build
	@bench/run $(BUILD)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
