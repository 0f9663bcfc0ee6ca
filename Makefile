# keel — the two commands of the README: `make demo` and `make test`.
# Both install what is missing (Debian 12, as root or with sudo), configure and build.

BUILD ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=
DEB_PACKAGES := g++ cmake make pkg-config ccache libcaf-dev librocksdb-dev libflatbuffers-dev \
  flatbuffers-compiler libspdlog-dev libgtest-dev libgmock-dev nlohmann-json3-dev \
  libyaml-cpp-dev libcli11-dev liblua5.4-dev libcpp-httplib-dev libssl-dev libjemalloc-dev libhowardhinnant-date-dev \
  tzdata clang-format python3 chromium chromium-driver python3-selenium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export CCACHE_DIR ?= $(HOME)/.cache/ccache

.PHONY: all deps configure build demo test test-fast format format-check fuzz bench bench-compare clean

all: build

# Installs only the packages that are missing (dpkg-query), so a ready machine pays nothing.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS)

configure: deps $(BUILD)/CMakeCache.txt

build: configure
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./examples/demo.sh $(BUILD)/bin/keel

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS) --timeout 900

format:
	git ls-files '*.h' '*.cc' | xargs clang-format -i

format-check:
	git ls-files '*.h' '*.cc' | xargs clang-format --dry-run --Werror

# Brief coverage-guided fuzzing of the event decoder (needs clang).
fuzz: deps
	cmake -S . -B $(BUILD)-fuzz -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
	  -DKEEL_FUZZ=ON -DKEEL_BUILD_TESTS=OFF -DKEEL_BUILD_BENCH=OFF
	cmake --build $(BUILD)-fuzz -j $(JOBS) --target fuzz_decode
	mkdir -p $(BUILD)-fuzz/corpus && cp tests/fuzz/corpus/* $(BUILD)-fuzz/corpus/
	$(BUILD)-fuzz/bin/fuzz_decode -max_total_time=$${FUZZ_SECONDS:-60} $(BUILD)-fuzz/corpus

bench: build
	./bench/run.sh $(BUILD)

bench-compare: build
	./bench/compare.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD)-fuzz
