#include "store/internal/rocks.h"

#include <rocksdb/filter_policy.h>
#include <rocksdb/metadata.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>

#include "store/internal/info_log.h"

namespace keel::store::internal {
namespace {

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

rocksdb::WALRecoveryMode RecoveryMode(WalDamage damage) {
  switch (damage) {
    case WalDamage::kDropRest:
      return rocksdb::WALRecoveryMode::kPointInTimeRecovery;
    case WalDamage::kSkip:
      return rocksdb::WALRecoveryMode::kSkipAnyCorruptedRecords;
    case WalDamage::kRefuse:
    default:
      // Tolerates only an incomplete last record (a write cut short by a
      // crash, never acknowledged); RocksDB's default, point in time, drops
      // everything after a bad record in the middle without a word.
      return rocksdb::WALRecoveryMode::kTolerateCorruptedTailRecords;
  }
}

// The status of a failed open, with where the WAL is damaged when RocksDB
// said so in its info log.
Status OpenFailure(const rocksdb::Status& s, const std::string& context, const std::string& db_path,
                   const InfoLog* log) {
  Status status = ToStatus(s, context + " " + db_path);
  if (!s.IsCorruption()) return status;
  std::string where = log ? log->Damage() : "";
  std::string data_dir = std::filesystem::path(db_path).parent_path().string();
  if (where.empty()) {
    return Status::Corruption(status.message() + "; the store is damaged and was left as it is");
  }
  return Status::Corruption(status.message() + " (" + where +
                            "); the write-ahead log is damaged and was left as it is (keel repair "
                            "--data " + data_dir + " shows what recovery would drop)");
}

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
  // After a failed write (a full disk) RocksDB refuses writes until resumed:
  // the writer resumes before its next commit (writer.h), so that a commit
  // that finds space again succeeds, rather than a background retry a second
  // later that answers the writer's Resume with Busy meanwhile.
  o.max_bgerror_resume_count = 0;
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

// The names of the DB's files but its info logs and LOCK. RocksDB never
// reuses a file number, so an unchanged list means that no flush, compaction
// or open of the primary retired a file between two listings.
std::vector<std::string> DbFiles(const std::string& db_path) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(db_path, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("LOG", 0) == 0 || name == "LOCK") continue;
    names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Corruption when a table file the DB's manifest lists is not in its dir: a
// secondary (and RocksDB's read paths) would otherwise read around it and
// show a store with holes.
Status CheckTableFiles(rocksdb::DB* db, const std::string& db_path) {
  std::vector<rocksdb::LiveFileMetaData> files;
  db->GetLiveFilesMetaData(&files);
  for (const auto& file : files) {
    std::string path = file.directory + "/" + file.relative_filename;
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
      return Status::Corruption("open " + db_path + ": table file " + path +
                                " of the store is missing; the store is damaged and was left "
                                "as it is");
    }
  }
  return Status::OK();
}

// A secondary that meets a table file missing from the dir silently falls
// back to the newest version of the manifest without it, which lacks every
// later flush too (`ls` listed 67 of 924). Its view then leaves table files of
// the dir out: only then (a crash can also leave an unrecorded or obsolete
// table file behind) does a strict read-only open, which refuses a missing
// file, decide.
Status CheckSecondaryView(rocksdb::DB* db, const std::string& db_path,
                          const std::vector<std::string>& dir_files) {
  KEEL_RETURN_IF_ERROR(CheckTableFiles(db, db_path));
  std::vector<rocksdb::LiveFileMetaData> live;
  db->GetLiveFilesMetaData(&live);
  std::vector<std::string> names;
  for (const auto& file : live) names.push_back(file.relative_filename);
  std::sort(names.begin(), names.end());
  bool unseen = false;
  for (const auto& name : dir_files) {
    std::string_view n(name);
    bool table = n.size() > 4 && (n.substr(n.size() - 4) == ".sst" || n.substr(n.size() - 4) == ".ldb");
    unseen = unseen || (table && !std::binary_search(names.begin(), names.end(), name));
  }
  if (!unseen) return Status::OK();
  auto strict = Rocks::OpenForInspection(db_path);
  if (strict.ok()) return Status::OK();
  if (strict.status().message().find("No such file") != std::string::npos) {
    return Status::Corruption(strict.status().message());
  }
  return strict.status().IsCorruption() ? strict.status() : Status::OK();
}

// How often a secondary reopens or catches up again while the primary keeps
// changing its files, and the pause between tries.
constexpr int kStableTries = 50;
constexpr auto kStablePause = std::chrono::milliseconds(20);

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
                                                    bool create_if_missing, WalDamage damage) {
  std::unique_ptr<Rocks> rocks(new Rocks());
  rocksdb::DBOptions options = DbOptions(create_if_missing);
  options.wal_recovery_mode = RecoveryMode(damage);
  std::error_code ec;
  if (create_if_missing) std::filesystem::create_directories(db_path, ec);
  auto log = std::make_shared<InfoLog>(db_path);
  options.info_log = log;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::Open(options, db_path, Descriptors(), &rocks->owned_, &db);
  if (!s.ok()) {
    // RocksDB reports a held LOCK file as an IOError ("lock hold by current
    // process" / "While lock file ... Resource temporarily unavailable").
    if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
      return Status::Busy("store " + db_path + " is held by another read-write instance (" +
                          s.ToString() + ")");
    }
    return OpenFailure(s, "open", db_path, log.get());
  }
  rocks->db_.reset(db);
  for (size_t i = 0; i < format::kNumColumnFamilies; ++i) rocks->handles_[i] = rocks->owned_[i + 1];
  KEEL_RETURN_IF_ERROR(CheckTableFiles(db, db_path));
  return rocks;
}

Result<std::unique_ptr<Rocks>> Rocks::OpenSecondary(const std::string& db_path,
                                                    const std::string& scratch_dir) {
  for (int attempt = 1;; ++attempt) {
    const std::vector<std::string> before = DbFiles(db_path);
    Result<std::unique_ptr<Rocks>> rocks = OpenSecondaryOnce(db_path, scratch_dir);
    if (DbFiles(db_path) == before || attempt == kStableTries) {
      if (rocks.ok()) KEEL_RETURN_IF_ERROR(CheckSecondaryView((*rocks)->db(), db_path, before));
      return rocks;
    }
    std::this_thread::sleep_for(kStablePause);
  }
}

Status Rocks::CatchUp() {
  if (!db_) return Status::Aborted("store is closed");
  for (int attempt = 1;; ++attempt) {
    const std::vector<std::string> before = DbFiles(db_path_);
    rocksdb::Status s = db_->TryCatchUpWithPrimary();
    if (DbFiles(db_path_) == before || attempt == kStableTries) {
      return ToStatus(s, "catch up with primary");
    }
    std::this_thread::sleep_for(kStablePause);
  }
}

Result<std::unique_ptr<Rocks>> Rocks::OpenSecondaryOnce(const std::string& db_path,
                                                        const std::string& scratch_dir) {
  std::unique_ptr<Rocks> rocks(new Rocks());
  rocks->db_path_ = db_path;
  rocks->follower_ = true;
  rocksdb::DBOptions options = DbOptions(false);
  options.max_open_files = -1;  // required by secondary instances
  auto log = std::make_shared<InfoLog>(scratch_dir);
  options.info_log = log;
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::OpenAsSecondary(options, db_path, scratch_dir, Descriptors(),
                                                   &rocks->owned_, &db);
  if (!s.ok()) return OpenFailure(s, "open secondary", db_path, log.get());
  rocks->db_.reset(db);
  for (size_t i = 0; i < format::kNumColumnFamilies; ++i) rocks->handles_[i] = rocks->owned_[i + 1];
  return rocks;
}

Result<std::unique_ptr<Rocks>> Rocks::OpenForInspection(const std::string& db_path,
                                                        WalDamage damage) {
  rocksdb::DBOptions options = DbOptions(false);
  options.wal_recovery_mode = RecoveryMode(damage);
  auto log = std::make_shared<InfoLog>("");  // writes nothing
  options.info_log = log;
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
  if (!s.ok()) return OpenFailure(s, "open read-only", db_path, log.get());
  rocks->db_.reset(db);
  for (size_t i = 0; i < slot.size(); ++i) rocks->handles_[slot[i]] = rocks->owned_[i + 1];
  KEEL_RETURN_IF_ERROR(CheckTableFiles(db, db_path));
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
