#pragma once

// The web console's files, compiled into the binary (embed_assets.cmake
// generates the definitions from http/console at build time).

#include <cstddef>

namespace keel::http {

// One file of the console: its URL path and its bytes.
struct ConsoleAsset {
  const char* path;  // "/console/console.js"
  const unsigned char* data;
  size_t size;
};

extern const ConsoleAsset kConsoleAssets[];
extern const size_t kConsoleAssetCount;

}  // namespace keel::http
