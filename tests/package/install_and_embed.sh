#!/bin/sh
# Installs this build into a temporary prefix as a user would, then:
#  - checks what is there (only include/keel/, each quoted include installed);
#  - builds examples/embed out of tree with find_package(keel) against that
#    prefix and runs it (exit 0 and "result = 42");
#  - builds the same program from `pkg-config --cflags --libs keel` alone and
#    runs it.
# Usage: install_and_embed.sh CMAKE BUILD_DIR SOURCE_DIR LIBDIR CXX [LAUNCHER]
set -eu
cmake=$1 build=$2 src=$3 libdir=$4 cxx=$5 launcher=${6:-}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/keel-package.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "== cmake --install $build --prefix $prefix"
"$cmake" --install "$build" --prefix "$prefix" >"$tmp/install.log" ||
  { cat "$tmp/install.log"; fail "install"; }

for f in bin/keel include/keel/node.h include/keel/http.h include/keel/status.h \
         "$libdir/libkeel_http.a" "$libdir/libkeel_runtime.a" "$libdir/libkeel_base.a" \
         "$libdir/cmake/keel/keelConfig.cmake" "$libdir/cmake/keel/keelConfigVersion.cmake" \
         "$libdir/cmake/keel/keelTargets.cmake" "$libdir/cmake/keel/FindCAF.cmake" \
         "$libdir/pkgconfig/keel.pc"; do
  [ -e "$prefix/$f" ] || fail "not installed: $f"
done
extra=$(find "$prefix/include" -mindepth 1 -maxdepth 1 ! -name keel)
[ -z "$extra" ] || fail "installed headers outside include/keel: $extra"
# A public header may include only installed headers (not the generated
# schema header, not an internal one).
for h in "$prefix"/include/keel/*.h; do
  for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$h"); do
    [ -e "$prefix/include/$inc" ] || fail "$h includes \"$inc\", which is not installed"
  done
done
"$prefix/bin/keel" --version

echo "== examples/embed with find_package(keel)"
"$cmake" -S "$src/examples/embed" -B "$tmp/embed" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_CXX_COMPILER="$cxx" \
  ${launcher:+-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher"} >"$tmp/configure.log" ||
  { cat "$tmp/configure.log"; fail "configure examples/embed"; }
grep -q "^keel_DIR:PATH=$prefix/$libdir/cmake/keel\$" "$tmp/embed/CMakeCache.txt" ||
  fail "keel was not found in $prefix: $(grep '^keel_DIR' "$tmp/embed/CMakeCache.txt")"
"$cmake" --build "$tmp/embed" -j 2
out=$("$tmp/embed/embed_example" "$tmp/data-cmake") || fail "embed_example exited $?: $out"
echo "$out"
case $out in *"result = 42"*) ;; *) fail "embed_example: no result = 42" ;; esac

echo "== examples/embed with pkg-config"
PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
export PKG_CONFIG_PATH
flags=$(pkg-config --cflags --libs keel) || fail "pkg-config --cflags --libs keel"
echo "pkg-config --cflags --libs keel: $flags"
case $flags in *-lkeel_runtime*) ;; *) fail "keel.pc names no -lkeel_runtime" ;; esac
# shellcheck disable=SC2086 # the flags are words
$launcher "$cxx" -std=c++20 "$src/examples/embed/main.cc" -o "$tmp/embed_pc" $flags
out=$("$tmp/embed_pc" "$tmp/data-pc") || fail "the pkg-config build exited $?: $out"
echo "$out"
case $out in *"result = 42"*) ;; *) fail "the pkg-config build: no result = 42" ;; esac
echo "ok"
