#pragma once

// The version of keel: `keel --version` and GET /v1/health report it.
// CMakeLists.txt reads the project version from this line.

namespace keel {

inline constexpr char kVersion[] = "0.1.0";

}  // namespace keel
