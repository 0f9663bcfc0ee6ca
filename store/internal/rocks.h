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

// What an open does with a damaged write-ahead log: a record whose checksum
// fails or that is cut short anywhere but at the very end of the newest log
// (a write torn by a crash, which was never acknowledged).
enum class WalDamage {
  kRefuse,    // Corruption: an acknowledged write never silently disappears
  kDropRest,  // recover up to the last intact record before it (keel repair)
  kSkip,      // read around it (repair's count of what the log holds)
};

// An open RocksDB with keel's column families (in format::kColumnFamilies
// order). Not copyable; closes the DB on destruction.
class Rocks {
 public:
  // Opens read-write at `db_path`, creating the DB and missing CFs if allowed.
  static Result<std::unique_ptr<Rocks>> OpenReadWrite(const std::string& db_path,
                                                      bool create_if_missing,
                                                      WalDamage damage = WalDamage::kRefuse);
  // Opens as a RocksDB secondary instance that follows a live primary. A
  // secondary that opens while the primary flushes, compacts or opens can
  // miss a WAL the primary deletes meanwhile and see a store with holes: the
  // open is retried until no file of the DB came or went during it.
  static Result<std::unique_ptr<Rocks>> OpenSecondary(const std::string& db_path,
                                                      const std::string& scratch_dir);
  // Opens read-only, without writing anything (not even an info log); for
  // looking at a store before deciding to open it. NotFound when no DB exists.
  static Result<std::unique_ptr<Rocks>> OpenForInspection(const std::string& db_path,
                                                          WalDamage damage = WalDamage::kRefuse);

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
  // A secondary's TryCatchUpWithPrimary, repeated (bounded) until no file of
  // the DB came or went during it, for the reason OpenSecondary gives.
  Status CatchUp();

 private:
  Rocks() = default;
  static Result<std::unique_ptr<Rocks>> OpenSecondaryOnce(const std::string& db_path,
                                                          const std::string& scratch_dir);
  std::string db_path_;
  std::unique_ptr<rocksdb::DB> db_;
  bool follower_ = false;
  std::array<rocksdb::ColumnFamilyHandle*, format::kNumColumnFamilies> handles_{};
  std::vector<rocksdb::ColumnFamilyHandle*> owned_;  // includes "default"
};

// The single conversion from rocksdb::Status; `context` says what was done
// (e.g. "write batch", "open /data/db").
Status ToStatus(const rocksdb::Status& s, std::string_view context);

}  // namespace keel::store::internal
