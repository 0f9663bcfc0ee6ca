#include "store/internal/rocks.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <cstdarg>

namespace keel::store::internal {
namespace {

// Discards RocksDB's info log, so that inspecting a store writes no file.
class NullLogger : public rocksdb::Logger {
 public:
  using rocksdb::Logger::Logv;
  void Logv(const char*, va_list) override {}
};

// The part of a key that locates the next insert: a stream key without its
// seq (a stream's events arrive in seq order), or nothing (the global log
// only grows). The memtable keeps its last insert per prefix as a hint, so an
// append's inserts skip most of the skiplist search.
class InsertHintPrefix : public rocksdb::SliceTransform {
 public:
  // The prefix is the key without its last `drop` bytes; kNone: empty.
  static constexpr size_t kNone = SIZE_MAX;
  explicit InsertHintPrefix(size_t drop) : drop_(drop) {}
  const char* Name() const override { return "keel.InsertHintPrefix"; }
  rocksdb::Slice Transform(const rocksdb::Slice& key) const override {
    return {key.data(), drop_ == kNone ? 0 : key.size() - drop_};
  }
  bool InDomain(const rocksdb::Slice& key) const override {
    return drop_ == kNone || key.size() >= drop_;
  }

 private:
  size_t drop_;
};

rocksdb::DBOptions DbOptions(bool create_if_missing) {
  rocksdb::DBOptions o;
  // One writer at a time (store/internal/writer.h); RocksDB's concurrent
  // memtable inserts would only add atomics, and they disable insert hints.
  o.allow_concurrent_memtable_write = false;
  o.create_if_missing = create_if_missing;
  o.create_missing_column_families = create_if_missing;
  o.max_background_jobs = 2;
  o.keep_log_file_num = 4;
  // No WAL recycling, though an overwriting fdatasync takes about half of an
  // appending one on this disk: RocksDB keeps it only with recovery mode
  // kSkipAnyCorruptedRecords, and Debian's RocksDB 7.8 then crashes in
  // DBImpl::MarkLogsSynced during a flush (docs/architecture.md).
  o.recycle_log_file_num = 0;
  // Opening after a crash replays the live WAL. A column family written
  // rarely (meta, definitions, snapshots) would keep the first WAL file live
  // for ever, and every one after it: past this size, RocksDB flushes it.
  o.max_total_wal_size = 128 << 20;
  return o;
}

rocksdb::ColumnFamilyOptions CfOptions(std::string_view name = {}) {
  rocksdb::ColumnFamilyOptions o;
  if (name == format::kEventsCf) {
    o.memtable_insert_with_hint_prefix_extractor = std::make_shared<InsertHintPrefix>(8);
  } else if (name == format::kLogCf) {
    o.memtable_insert_with_hint_prefix_extractor = std::make_shared<InsertHintPrefix>(InsertHintPrefix::kNone);
  }
  rocksdb::BlockBasedTableOptions table;
  // Point lookups (events by log entry, index records) mostly hit: a filter
  // still saves the probe of every level that does not hold the key.
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Descriptors() {
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, CfOptions());
  for (const char* name : format::kColumnFamilies) cfs.emplace_back(name, CfOptions(name));
  return cfs;
}

}  // namespace

Status ToStatus(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::OK();
  std::string msg = std::string(context) + ": " + s.ToString();
  using C = rocksdb::Status::Code;
  switch (s.code()) {
    case C::kNotFound:
      return Status::NotFound(std::move(msg));
    case C::kCorruption:
      return Status::Corruption(std::move(msg));
    case C::kNotSupported:
      return Status::NotSupported(std::move(msg));
    case C::kInvalidArgument:
      return Status::InvalidArgument(std::move(msg));
    case C::kBusy:
    case C::kTryAgain:
      return Status::Busy(std::move(msg));
    case C::kTimedOut:
      return Status::TimedOut(std::move(msg));
    case C::kAborted:
    case C::kShutdownInProgress:
      return Status::Aborted(std::move(msg));
    default:
      return Status::IOError(std::move(msg));
  }
}

Result<std::unique_ptr<Rocks>> Rocks::OpenReadWrite(const std::string& db_path,
                                                    bool create_if_missing) {
  std::unique_ptr<Rocks> rocks(new Rocks());
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(DbOptions(create_if_missing), db_path, Descriptors(), &rocks->owned_, &db);
  if (!s.ok()) {
    // RocksDB reports a held LOCK file as an IOError ("lock hold by current
    // process" / "While lock file ... Resource temporarily unavailable").
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::Busy("store " + db_path + " is held by another read-write instance (" +
                          s.ToString() + ")");
    }
    return ToStatus(s, "open " + db_path);
  }
  rocks->db_.reset(db);
  for (size_t i = 0; i < format::kNumColumnFamilies; ++i) rocks->handles_[i] = rocks->owned_[i + 1];
  return rocks;
}

Result<std::unique_ptr<Rocks>> Rocks::OpenSecondary(const std::string& db_path,
                                                    const std::string& scratch_dir) {
  std::unique_ptr<Rocks> rocks(new Rocks());
  rocks->follower_ = true;
  rocksdb::DBOptions options = DbOptions(false);
  options.max_open_files = -1;  // required by secondary instances
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenAsSecondary(options, db_path, scratch_dir, Descriptors(),
                                                   &rocks->owned_, &db);
  if (!s.ok()) return ToStatus(s, "open secondary " + db_path);
  rocks->db_.reset(db);
  for (size_t i = 0; i < format::kNumColumnFamilies; ++i) rocks->handles_[i] = rocks->owned_[i + 1];
  return rocks;
}

Result<std::unique_ptr<Rocks>> Rocks::OpenForInspection(const std::string& db_path) {
  rocksdb::DBOptions options = DbOptions(false);
  options.info_log = std::make_shared<NullLogger>();
  std::vector<std::string> names;
  rocksdb::Status s = rocksdb::DB::ListColumnFamilies(options, db_path, &names);
  if (!s.ok()) return ToStatus(s, "list column families of " + db_path);
  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  cfs.emplace_back(rocksdb::kDefaultColumnFamilyName, CfOptions());
  std::vector<int> slot;  // index in handles_ of each cfs[i>0]
  for (size_t i = 0; i < format::kNumColumnFamilies; ++i) {
    for (const auto& name : names) {
      if (name == format::kColumnFamilies[i]) {
        cfs.emplace_back(name, CfOptions(name));
        slot.push_back(static_cast<int>(i));
      }
    }
  }
  std::unique_ptr<Rocks> rocks(new Rocks());
  rocks->follower_ = true;
  rocksdb::DB* db = nullptr;
  s = rocksdb::DB::OpenForReadOnly(options, db_path, cfs, &rocks->owned_, &db);
  if (!s.ok()) return ToStatus(s, "open read-only " + db_path);
  rocks->db_.reset(db);
  for (size_t i = 0; i < slot.size(); ++i) rocks->handles_[slot[i]] = rocks->owned_[i + 1];
  return rocks;
}

Status Rocks::Close() {
  if (!db_) return Status::OK();
  for (auto* handle : owned_) {
    rocksdb::Status s = db_->DestroyColumnFamilyHandle(handle);
    s.PermitUncheckedError();
  }
  owned_.clear();
  handles_ = {};
  rocksdb::Status s = db_->Close();
  db_.reset();
  return ToStatus(s, "close");
}

Rocks::~Rocks() { Close().IgnoreError(); }

}  // namespace keel::store::internal
