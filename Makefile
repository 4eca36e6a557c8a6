# Convenience wrapper around meson/ninja. The two set-up commands of
# README.md: `make demo` and `make check`.
BUILD      ?= build
ASAN_BUILD ?= build-asan
MESON_OPTS ?= -Dwerror=true

.PHONY: all deps build build-asan check demo bench fuzz fuzz-long mutants crash clean install uninstall

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

# Installs the tools, libqblk (shared and static), its public headers,
# qblk.pc and the man pages under PREFIX (staged under DESTDIR if set).
PREFIX ?= /usr/local
install: build
	meson configure $(BUILD) -Dprefix=$(PREFIX) >/dev/null
	DESTDIR=$(DESTDIR) meson install -C $(BUILD)

# Removes what the last install put in place.
uninstall:
	ninja -C $(BUILD) uninstall

# libFuzzer build of tests/fuzz (clang); FUZZ_SECONDS of fuzzing per target from its corpus
# (an input running over 60 s counts as a hang).
FUZZ_BUILD   ?= build-fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= qed qcow2 nbd qmp
FUZZ_JOBS    ?= 2
$(FUZZ_BUILD)/build.ninja:
	CC=clang meson setup $(FUZZ_BUILD) -Dfuzzing=true -Db_sanitize=address,undefined \
	    -Db_lundef=false -Dbuildtype=debugoptimized -Dc_args=-fsanitize=fuzzer-no-link

fuzz: deps
	@command -v clang >/dev/null || { echo "make fuzz needs clang: apt-get install clang libclang-rt-14-dev"; exit 1; }
	@$(MAKE) --no-print-directory $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $(addprefix tests/fuzz/fuzz-,$(FUZZ_TARGETS))
	for f in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_BUILD)/corpus-$$f && cp tests/fuzz/corpus/$$f/* $(FUZZ_BUILD)/corpus-$$f/ && \
	    $(FUZZ_BUILD)/tests/fuzz/fuzz-$$f -max_total_time=$(FUZZ_SECONDS) -timeout=60 \
	        -artifact_prefix=$(CURDIR)/ \
	        $$([ -f tests/fuzz/$$f.dict ] && echo -dict=$(CURDIR)/tests/fuzz/$$f.dict) \
	        $(abspath $(FUZZ_BUILD))/corpus-$$f || exit 1; \
	done

# Each target for FUZZ_SECONDS, FUZZ_JOBS at a time, then one summary of
# executions, exec/s and findings per target (tests/fuzz/fuzz-long).
fuzz-long: deps
	@command -v clang >/dev/null || { echo "make fuzz-long needs clang: apt-get install clang libclang-rt-14-dev"; exit 1; }
	@$(MAKE) --no-print-directory $(FUZZ_BUILD)/build.ninja
	ninja -C $(FUZZ_BUILD) $(addprefix tests/fuzz/fuzz-,$(FUZZ_TARGETS))
	@tests/fuzz/fuzz-long $(FUZZ_BUILD) $(FUZZ_SECONDS) $(FUZZ_JOBS) $(FUZZ_TARGETS)

bench: build
	@bench/run $(BUILD)

# Every crash state of every workload of tests/crash (CRASH_SECONDS=N: stops
# after about N seconds), then the fault sweep when there is one.
CRASH_SECONDS ?=
crash: build
	@rc=0; tests/crash/run --build $(BUILD) $(if $(CRASH_SECONDS),--seconds $(CRASH_SECONDS)) || rc=1; \
	if [ -x tests/faults/sweep ]; then \
	    tests/faults/sweep $(BUILD) $(if $(CRASH_SECONDS),--seconds $(CRASH_SECONDS)) || rc=1; \
	fi; exit $$rc

# Plants each bug of tests/mutants/list in a scratch build (not the tree's)
# and checks that its suites catch it; slow, so not part of `make check`.
mutants: deps
	@scripts/mutants.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
