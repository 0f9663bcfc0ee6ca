#pragma once

// What the writer knows about a stream without reading it: its last seq and
// chain hash and its process index record. A bounded LRU; owned and used by
// the writer thread only.

#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "store/format.h"

namespace keel::store::internal {

struct StreamState {
  uint64_t last_seq = 0;
  std::string last_hash;                        // 32 bytes; all zero for a new stream
  std::optional<format::ProcessRecord> record;  // nullopt until ProcessCreated
};

class StreamCache {
 public:
  explicit StreamCache(size_t capacity) : capacity_(capacity == 0 ? 1 : capacity) {}

  // The cached state, now the most recently used; nullptr on a miss.
  StreamState* Find(std::string_view stream) {
    auto it = map_.find(stream);
    if (it == map_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second);
    return &it->second->second;
  }

  // Inserts or replaces, evicting the least recently used beyond capacity.
  void Put(std::string_view stream, StreamState state) {
    if (StreamState* cached = Find(stream)) {
      *cached = std::move(state);
      return;
    }
    lru_.emplace_front(std::string(stream), std::move(state));
    map_.emplace(lru_.front().first, lru_.begin());
    while (map_.size() > capacity_) {
      map_.erase(lru_.back().first);
      lru_.pop_back();
    }
  }

  void Erase(std::string_view stream) {
    auto it = map_.find(stream);
    if (it == map_.end()) return;
    auto node = it->second;
    map_.erase(it);
    lru_.erase(node);
  }

  void Clear() {
    map_.clear();
    lru_.clear();
  }
  size_t size() const { return map_.size(); }

 private:
  using Entry = std::pair<std::string, StreamState>;
  size_t capacity_;
  std::list<Entry> lru_;  // most recent first; map_ keys view into it
  std::unordered_map<std::string_view, std::list<Entry>::iterator> map_;
};

}  // namespace keel::store::internal
