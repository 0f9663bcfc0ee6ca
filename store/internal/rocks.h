#pragma once

// The RocksDB handle of a store: the DB, its column families and the options
// they are opened with, and the one place where rocksdb::Status becomes
// keel::Status.

#include <rocksdb/db.h>

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "keel/status.h"
#include "store/format.h"

namespace keel::store::internal {

enum Cf : size_t { kEvents = 0, kLog, kSnapshots, kIndex, kMeta, kDefinitions };

// An open RocksDB with keel's column families (in format::kColumnFamilies
// order). Not copyable; closes the DB on destruction.
class Rocks {
 public:
  // Opens read-write at `db_path`, creating the DB and missing CFs if allowed.
  static Result<std::unique_ptr<Rocks>> OpenReadWrite(const std::string& db_path,
                                                      bool create_if_missing);
  // Opens as a RocksDB secondary instance that follows a live primary.
  static Result<std::unique_ptr<Rocks>> OpenSecondary(const std::string& db_path,
                                                      const std::string& scratch_dir);
  // Opens read-only, without writing anything (not even an info log); for
  // looking at a store before deciding to open it. NotFound when no DB exists.
  static Result<std::unique_ptr<Rocks>> OpenForInspection(const std::string& db_path);

  ~Rocks();
  Rocks(const Rocks&) = delete;
  Rocks& operator=(const Rocks&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  // nullptr only for a CF missing in an inspected DB.
  rocksdb::ColumnFamilyHandle* cf(Cf cf) const { return handles_[cf]; }
  // True for a secondary or inspection instance: such a DB has a static view
  // between catch-ups and refuses RocksDB snapshots.
  bool follower() const { return follower_; }
  // Flushes nothing, closes; idempotent.
  Status Close();

 private:
  Rocks() = default;
  std::unique_ptr<rocksdb::DB> db_;
  bool follower_ = false;
  std::array<rocksdb::ColumnFamilyHandle*, format::kNumColumnFamilies> handles_{};
  std::vector<rocksdb::ColumnFamilyHandle*> owned_;  // includes "default"
};

// The single conversion from rocksdb::Status; `context` says what was done
// (e.g. "write batch", "open /data/db").
Status ToStatus(const rocksdb::Status& s, std::string_view context);

}  // namespace keel::store::internal
