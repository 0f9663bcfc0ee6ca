#!/bin/sh
# Configures (without building) a parent project that takes keel in with
# add_subdirectory and links a program to keel::keel: it must configure and
# generate, keel must leave the parent's build type and output directory
# alone, and its tests, benchmarks, examples and install rules are off.
# Usage: subproject_configure.sh CMAKE KEEL_SOURCE_DIR
set -eu
cmake=$1 src=$2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-subproject.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unset CMAKE_BUILD_TYPE
fail() { echo "FAIL: $*" >&2; exit 1; }

mkdir "$tmp/parent"
cat >"$tmp/parent/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.22)
project(keel_parent LANGUAGES CXX)
add_subdirectory("$src" keel)
if(NOT TARGET keel::keel)
  message(FATAL_ERROR "add_subdirectory(keel) gave no keel::keel")
endif()
foreach(option KEEL_BUILD_TESTS KEEL_BUILD_BENCH KEEL_BUILD_EXAMPLES KEEL_INSTALL)
  if(\${option})
    message(FATAL_ERROR "\${option} is on in a subproject")
  endif()
endforeach()
if(CMAKE_BUILD_TYPE)
  message(FATAL_ERROR "keel set the parent's CMAKE_BUILD_TYPE to \${CMAKE_BUILD_TYPE}")
endif()
if(DEFINED CMAKE_RUNTIME_OUTPUT_DIRECTORY)
  message(FATAL_ERROR "keel set the parent's CMAKE_RUNTIME_OUTPUT_DIRECTORY")
endif()
add_executable(app "$src/examples/embed/main.cc")
target_link_libraries(app PRIVATE keel::keel)
CMAKE

"$cmake" -S "$tmp/parent" -B "$tmp/build" >"$tmp/configure.log" 2>&1 ||
  { cat "$tmp/configure.log"; fail "the parent does not configure"; }
cat "$tmp/configure.log"
grep -q '^CMAKE_BUILD_TYPE:STRING=$' "$tmp/build/CMakeCache.txt" ||
  fail "keel cached a build type: $(grep '^CMAKE_BUILD_TYPE' "$tmp/build/CMakeCache.txt")"
echo "ok"
