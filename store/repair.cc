#include "store/repair.h"

#include <rocksdb/iterator.h>

#include <filesystem>
#include <memory>

#include "base/data_dir.h"
#include "store/format.h"
#include "store/internal/rocks.h"

namespace keel::store {
namespace {

using internal::Rocks;
using internal::WalDamage;

Result<Census> Count(Rocks& rocks) {
  Census census;
  if (rocks.cf(internal::kLog) == nullptr || rocks.cf(internal::kIndex) == nullptr) return census;
  std::unique_ptr<rocksdb::Iterator> log(
      rocks.db()->NewIterator(rocksdb::ReadOptions(), rocks.cf(internal::kLog)));
  log->SeekToLast();
  if (log->Valid()) {
    auto last = format::LastGlobalSeqOf(log->key().ToStringView(), log->value().ToStringView());
    if (!last) return Status::Corruption("malformed last log entry");
    census.events = *last;
  }
  KEEL_RETURN_IF_ERROR(internal::ToStatus(log->status(), "read log"));
  std::unique_ptr<rocksdb::Iterator> index(
      rocks.db()->NewIterator(rocksdb::ReadOptions(), rocks.cf(internal::kIndex)));
  const std::string prefix(1, format::kIndexStatusCount);
  for (index->Seek(prefix); index->Valid() && index->key().starts_with(prefix); index->Next()) {
    census.processes += format::DecodeU64(index->value().ToStringView()).value_or(0);
  }
  KEEL_RETURN_IF_ERROR(internal::ToStatus(index->status(), "read index"));
  return census;
}

// Opens the DB read-only the way `damage` says and counts what it holds.
Result<Census> CountAs(const std::string& db_path, WalDamage damage) {
  auto rocks = Rocks::OpenForInspection(db_path, damage);
  if (!rocks.ok()) return rocks.status();
  return Count(**rocks);
}

}  // namespace

Result<DamageReport> InspectDamage(const std::string& path) {
  const std::string db_path = data_dir::Db(path);
  std::error_code ec;
  if (!std::filesystem::exists(db_path + "/CURRENT", ec)) {
    return Status::NotFound("no store at " + path);
  }
  if (auto marked = format::ReadFormatFile(path); !marked.ok()) return marked.status();
  DamageReport report;
  Result<Census> intact = CountAs(db_path, WalDamage::kRefuse);
  if (intact.ok()) {
    report.readable = report.kept = *intact;
    return report;
  }
  if (!intact.status().IsCorruption()) return intact.status();
  report.damaged = true;
  report.damage = intact.status().message();
  Result<Census> readable = CountAs(db_path, WalDamage::kSkip);
  if (!readable.ok()) return readable.status();
  Result<Census> kept = CountAs(db_path, WalDamage::kDropRest);
  if (!kept.ok()) return kept.status();
  report.readable = *readable;
  report.kept = *kept;
  return report;
}

Result<DamageReport> RepairStore(const std::string& path) {
  Result<DamageReport> report = InspectDamage(path);
  if (!report.ok() || !report->damaged) return report;
  {
    // Point-in-time recovery replays the WAL up to the damage, flushes what
    // it kept to table files and retires the damaged logs: the cut is
    // durable once the open returns (the normal open below checks).
    auto rocks = Rocks::OpenReadWrite(data_dir::Db(path), /*create_if_missing=*/false,
                                      WalDamage::kDropRest);
    if (!rocks.ok()) return rocks.status();
    auto kept = Count(**rocks);
    if (!kept.ok()) return kept.status();
    report->kept = *kept;
    KEEL_RETURN_IF_ERROR((*rocks)->Close());
  }
  // As a node opens it: refuses it if anything is still damaged.
  StoreOptions options;
  options.path = path;
  options.create_if_missing = false;
  auto store = EventStore::Open(options);
  if (!store.ok()) return store.status();
  auto problems = (*store)->Verify();
  KEEL_RETURN_IF_ERROR((*store)->Close());
  if (!problems.ok()) return problems.status();
  report->problems = std::move(*problems);
  return report;
}

}  // namespace keel::store
