#pragma once

// The backends of the EventStore interface. Every case of the TCK, the
// concurrency test and the crash test runs against each one listed here, so a
// new backend is judged by the same cases as the first.

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "store/event_store.h"

namespace keel::store::testing {

struct Backend {
  std::string name;  // a test-name part, and append_child's argument
  std::function<Result<std::unique_ptr<EventStore>>(const StoreOptions&)> open;
  // A read-only follower of the store at `path` (reads, no writes).
  std::function<Result<std::unique_ptr<EventStore>>(const std::string& path,
                                                    const std::string& scratch_dir)>
      open_read_only;
};

inline const std::vector<Backend>& Backends() {
  static const std::vector<Backend> all = {
      {"rocksdb", [](const StoreOptions& options) { return EventStore::Open(options); },
       [](const std::string& path, const std::string& scratch) {
         return EventStore::OpenReadOnly(path, scratch);
       }},
  };
  return all;
}

// How gtest shows a backend parameter: its name.
inline void PrintTo(const Backend& backend, std::ostream* os) { *os << backend.name; }

// The backend named `name`; nullptr for none.
inline const Backend* FindBackend(std::string_view name) {
  for (const auto& b : Backends()) {
    if (b.name == name) return &b;
  }
  return nullptr;
}

}  // namespace keel::store::testing
