#include "store/event_store.h"

#include <fcntl.h>
#include <rocksdb/iterator.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "base/data_dir.h"
#include "store/format.h"
#include "store/internal/annotate.h"
#include "store/internal/rocks.h"
#include "store/internal/verifier.h"
#include "store/internal/writer.h"

namespace keel::store {
namespace {

using internal::Cf;
using internal::Rocks;
using internal::ToStatus;

bool HasDb(const std::string& path) {
  std::error_code ec;
  return std::filesystem::exists(data_dir::Db(path) + "/CURRENT", ec);
}

Status CheckName(std::string_view what, std::string_view name) {
  if (name.empty() || name.find('\0') != std::string_view::npos) {
    return Status::InvalidArgument(std::string(what) + " must be non-empty and without NUL");
  }
  return Status::OK();
}

// Replaces DIR/FORMAT atomically (write, sync, rename).
Status WriteFormatFile(const std::string& path) {
  const std::string target = data_dir::FormatFile(path), temp = target + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Status::IOError("create " + temp + ": " + std::strerror(errno));
  const std::string text = std::to_string(format::kFormatVersion) + "\n";
  bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()) &&
            ::fsync(fd) == 0;
  ok = (::close(fd) == 0) && ok;
  if (!ok || ::rename(temp.c_str(), target.c_str()) != 0) {
    return Status::IOError("write " + target + ": " + std::strerror(errno));
  }
  return Status::OK();
}

Status NewerFormat(const std::string& path, uint32_t version) {
  return format::NewerFormat(path, version, /*from_file=*/false);
}

// OK for a store of this format or older (or with no version yet); `current`
// says whether the meta holds this keel's version.
Status CheckFormatVersion(Rocks& rocks, const std::string& path, bool* current) {
  *current = false;
  if (rocks.cf(internal::kMeta) == nullptr) return Status::OK();
  std::string value;
  rocksdb::Status s = rocks.db()->Get(rocksdb::ReadOptions(), rocks.cf(internal::kMeta),
                                      format::kMetaFormatVersion, &value);
  if (s.IsNotFound()) return Status::OK();
  KEEL_RETURN_IF_ERROR(ToStatus(s, "read format version of " + path));
  auto version = format::DecodeU32(value);
  if (!version) return Status::Corruption("store " + path + ": malformed format version");
  if (*version > format::kFormatVersion) return NewerFormat(path, *version);
  *current = *version == format::kFormatVersion;
  return Status::OK();
}

class RocksEventStore final : public EventStore {
 public:
  RocksEventStore(std::unique_ptr<Rocks> rocks, std::unique_ptr<internal::Writer> writer,
                  Durability durability)
      : rocks_(std::move(rocks)),
        writer_(std::move(writer)),
        stats_(writer_ ? writer_->stats() : nullptr),
        read_only_(writer_ == nullptr) {
    write_options_.sync = durability == Durability::kSync;
  }
  ~RocksEventStore() override { Close().IgnoreError(); }

  Status Close() override {
    if (closed_.exchange(true)) return Status::OK();
    if (writer_) writer_->Stop();
    writer_.reset();
    return rocks_->Close();
  }
  bool read_only() const override { return read_only_; }

  Status TryCatchUp() override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    if (writer_) return Status::OK();  // the primary is always current
    return rocks_->CatchUp();
  }

  Result<AppendResult> Append(AppendRequest request) override {
    KEEL_RETURN_IF_ERROR(CheckWritable());
    return writer_->SubmitAndWait(std::move(request));
  }

  void AppendAsync(AppendRequest request, AppendCallback done) override {
    if (Status s = CheckWritable(); !s.ok()) {
      done(std::move(s));
      return;
    }
    writer_->Submit(std::move(request), std::move(done));
  }

  Status SaveSnapshot(std::string_view stream, uint64_t seq, std::string_view state_json,
                      uint32_t keep) override {
    KEEL_RETURN_IF_ERROR(CheckWritable());
    KEEL_RETURN_IF_ERROR(CheckName("stream id", stream));
    Result<uint64_t> last = LastSeq(stream);
    if (!last.ok()) return last.status();
    if (seq == 0 || seq > *last) {
      return Status::InvalidArgument("snapshot of " + std::string(stream) + " at seq " +
                                     std::to_string(seq) + ": the stream is at " +
                                     std::to_string(*last));
    }
    // The oldest snapshot kept besides this one: the (keep-1)-th below it.
    uint64_t prune_below = keep == 1 ? seq : 0;
    if (keep > 1 && seq > 1) {
      auto older = SeekLast(internal::kSnapshots, stream, seq - 1);
      for (uint32_t n = 1; older->found(); older->it->Prev()) {
        std::string_view s;
        uint64_t at = 0;
        if (!format::ParseStreamKey(older->it->key().ToStringView(), &s, &at)) break;
        if (++n == keep) {
          prune_below = at;
          break;
        }
      }
      KEEL_RETURN_IF_ERROR(ToStatus(older->it->status(), "read snapshots of " + std::string(stream)));
    }
    rocksdb::WriteBatch batch;
    auto* cf = rocks_->cf(internal::kSnapshots);
    if (prune_below > 1) {
      batch.DeleteRange(cf, format::StreamKey(stream, 0), format::StreamKey(stream, prune_below));
    }
    batch.Put(cf, format::StreamKey(stream, seq), format::EncodeSnapshot(seq, state_json));
    // Unsynced: a snapshot is a projection, rebuilt from the log if a crash
    // loses it; and the WAL is sequential, so it never outlives its events.
    rocksdb::WriteOptions unsynced;
    return ToStatus(rocks_->db()->Write(unsynced, &batch), "save snapshot of " + std::string(stream));
  }

  Status PruneSnapshots(std::string_view stream, uint64_t below_seq) override {
    KEEL_RETURN_IF_ERROR(CheckWritable());
    KEEL_RETURN_IF_ERROR(CheckName("stream id", stream));
    if (below_seq <= 1) return Status::OK();
    return ToStatus(rocks_->db()->DeleteRange(write_options_, rocks_->cf(internal::kSnapshots),
                                              format::StreamKey(stream, 0),
                                              format::StreamKey(stream, below_seq)),
                    "prune snapshots of " + std::string(stream));
  }

  Status PutDefinition(std::string_view hash, std::string_view definition_json) override {
    KEEL_RETURN_IF_ERROR(CheckWritable());
    if (hash.empty()) return Status::InvalidArgument("definition hash is empty");
    return ToStatus(
        rocks_->db()->Put(write_options_, rocks_->cf(internal::kDefinitions),
                          rocksdb::Slice(hash.data(), hash.size()),
                          rocksdb::Slice(definition_json.data(), definition_json.size())),
        "put definition");
  }

  Result<std::vector<events::StoredEvent>> ReadStream(std::string_view stream, uint64_t from_seq,
                                                      uint64_t to_seq, size_t limit) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    KEEL_RETURN_IF_ERROR(CheckName("stream id", stream));
    std::vector<events::StoredEvent> out;
    from_seq = std::max<uint64_t>(from_seq, 1);
    if (from_seq > to_seq || limit == 0) return out;
    std::string upper = format::PrefixEnd(format::StreamPrefix(stream));
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(ro, cf(internal::kEvents)));
    for (it->Seek(format::StreamKey(stream, from_seq)); it->Valid() && out.size() < limit;
         it->Next()) {
      std::string_view s;
      uint64_t seq = 0;
      if (!format::ParseStreamKey(it->key().ToStringView(), &s, &seq)) {
        return Status::Corruption("stream " + std::string(stream) + ": malformed event key");
      }
      if (seq > to_seq) break;
      Result<events::StoredEvent> event = events::StoredEvent::Decode(it->value().ToString());
      if (!event.ok()) {
        return internal::Annotate(event.status(),
                                  "stream " + std::string(stream) + " seq " + std::to_string(seq));
      }
      out.push_back(std::move(event).value());
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read stream " + std::string(stream)));
    return out;
  }

  Result<std::vector<std::string>> ListStreams(std::string_view prefix) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    std::vector<std::string> streams;
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(read_, cf(internal::kEvents)));
    for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size()));
         it->Valid() && it->key().starts_with(rocksdb::Slice(prefix.data(), prefix.size()));) {
      std::string_view stream;
      uint64_t seq = 0;
      if (!format::ParseStreamKey(it->key().ToStringView(), &stream, &seq)) {
        return Status::Corruption("malformed event key under " + std::string(prefix));
      }
      streams.emplace_back(stream);
      it->Seek(format::PrefixEnd(format::StreamPrefix(stream)));  // past its events
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "list streams"));
    return streams;
  }

  Result<uint64_t> LastSeq(std::string_view stream) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    KEEL_RETURN_IF_ERROR(CheckName("stream id", stream));
    auto tail = SeekLast(internal::kEvents, stream, UINT64_MAX);
    const auto& it = tail->it;
    uint64_t seq = 0;
    if (tail->found()) {
      std::string_view s;
      if (!format::ParseStreamKey(it->key().ToStringView(), &s, &seq)) {
        return Status::Corruption("stream " + std::string(stream) + ": malformed event key");
      }
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read stream " + std::string(stream)));
    return seq;
  }

  Result<std::vector<events::StoredEvent>> ReadLog(uint64_t from_global_seq,
                                                   size_t limit) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    std::vector<events::StoredEvent> out;
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(read_, cf(internal::kLog)));
    // The entry holding `from_global_seq` may start before it.
    it->SeekForPrev(format::LogKey(from_global_seq));
    if (!it->Valid()) it->Seek(format::LogKey(from_global_seq));
    uint64_t next_global = 0;  // within the entry at `it`
    constexpr size_t kChunk = 256;
    while (out.size() < limit && it->Valid()) {
      std::vector<std::string> keys;
      std::vector<uint64_t> global_seqs;
      while (it->Valid() && keys.size() < kChunk && out.size() + keys.size() < limit) {
        auto first = format::DecodeU64(it->key().ToStringView());
        format::LogRun run;
        if (!first || !format::ParseLogValue(it->value().ToStringView(), &run)) {
          return Status::Corruption("malformed log entry " +
                                    format::EscapeKey(it->key().ToString()));
        }
        const uint64_t last = *first + run.count - 1;
        next_global = std::max({next_global, *first, from_global_seq});
        for (; next_global <= last && keys.size() < kChunk && out.size() + keys.size() < limit;
             ++next_global) {
          global_seqs.push_back(next_global);
          keys.push_back(format::StreamKey(run.stream, run.seq + (next_global - *first)));
        }
        if (next_global > last) it->Next();
      }
      std::vector<rocksdb::Slice> slices(keys.begin(), keys.end());
      std::vector<rocksdb::ColumnFamilyHandle*> cfs(keys.size(), cf(internal::kEvents));
      std::vector<std::string> values;
      std::vector<rocksdb::Status> got = rocks_->db()->MultiGet(read_, cfs, slices, &values);
      for (size_t i = 0; i < keys.size(); ++i) {
        if (got[i].IsNotFound()) {
          return Status::Corruption("log entry " + std::to_string(global_seqs[i]) + " points at " +
                                    format::EscapeKey(keys[i]) + ", which does not exist");
        }
        KEEL_RETURN_IF_ERROR(ToStatus(got[i], "read log"));
        Result<events::StoredEvent> event = events::StoredEvent::Decode(std::move(values[i]));
        if (!event.ok()) {
          return internal::Annotate(event.status(), "global seq " + std::to_string(global_seqs[i]));
        }
        out.push_back(std::move(event).value());
      }
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read log"));
    return out;
  }

  Result<uint64_t> LastGlobalSeq() override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(read_, cf(internal::kLog)));
    it->SeekToLast();
    uint64_t last = 0;
    if (it->Valid()) {
      auto g = format::LastGlobalSeqOf(it->key().ToStringView(), it->value().ToStringView());
      if (!g) return Status::Corruption("malformed last log entry");
      last = *g;
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read log"));
    return last;
  }

  Result<std::optional<Snapshot>> LatestSnapshot(std::string_view stream,
                                                 uint64_t max_seq) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    KEEL_RETURN_IF_ERROR(CheckName("stream id", stream));
    auto tail = SeekLast(internal::kSnapshots, stream, max_seq);
    const auto& it = tail->it;
    if (!tail->found()) {
      KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read snapshots of " + std::string(stream)));
      return std::optional<Snapshot>();
    }
    Snapshot snapshot;
    Status s =
        format::DecodeSnapshot(it->value().ToStringView(), &snapshot.seq, &snapshot.state_json);
    if (!s.ok()) {
      return internal::Annotate(s, "snapshot of " + std::string(stream));
    }
    return std::optional<Snapshot>(std::move(snapshot));
  }

  Result<std::optional<std::string>> GetDefinition(std::string_view hash) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    std::string value;
    rocksdb::Status s = rocks_->db()->Get(read_, cf(internal::kDefinitions),
                                          rocksdb::Slice(hash.data(), hash.size()), &value);
    if (s.IsNotFound()) return std::optional<std::string>();
    KEEL_RETURN_IF_ERROR(ToStatus(s, "read definition"));
    return std::optional<std::string>(std::move(value));
  }

  Result<IdList> ListProcesses(std::optional<events::ProcessStatus> status,
                               std::string_view workflow, Page page,
                               const ListNarrowing& narrow) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    if (!narrow.idempotency_key.empty()) return ListByKey(status, workflow, page, narrow);
    std::string prefix, counter_prefix;
    size_t fixed = 0;  // key bytes before ~created
    if (status && !workflow.empty()) {
      prefix = format::WorkflowStatusPrefix(workflow, *status);
      counter_prefix = format::WorkflowStatusCountKey(workflow, *status);
    } else if (status) {
      prefix = format::StatusPrefix(*status);
      counter_prefix = format::StatusCountKey(*status);
    } else if (!workflow.empty()) {
      prefix = format::WorkflowPrefix(workflow);
      counter_prefix = format::WorkflowStatusCountKey(workflow, events::ProcessStatus{});
      counter_prefix.pop_back();  // every status of the workflow
    } else {
      prefix = std::string(1, format::kIndexByCreation);
      counter_prefix = std::string(1, format::kIndexStatusCount);
    }
    fixed = prefix.size();
    // One iterator: the counters and the ids come from the same implicit snapshot.
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(read_, cf(internal::kIndex)));
    IdList list;
    if (narrow.until_ns < 0 || narrow.until_ns < narrow.since_ns) return list;
    for (it->Seek(counter_prefix);
         narrow.all_times() && it->Valid() && it->key().starts_with(counter_prefix); it->Next()) {
      list.total += format::DecodeU64(it->value().ToStringView()).value_or(0);
    }
    // Newest first: the range starts at `until` and ends before `since`.
    std::string start = prefix;
    format::PutBigEndian64(&start, UINT64_MAX - static_cast<uint64_t>(narrow.until_ns));
    size_t skipped = 0;
    for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      if (!narrow.all_times()) {
        if (format::CreatedAt(it->key().ToStringView(), fixed) < narrow.since_ns) break;
        ++list.total;
      } else if (list.ids.size() >= page.limit) {
        break;
      }
      if (skipped < page.offset) {
        ++skipped;
        continue;
      }
      if (list.ids.size() < page.limit) {
        list.ids.emplace_back(format::StreamAfterCreated(it->key().ToStringView(), fixed));
      }
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read index"));
    return list;
  }

  // ListProcesses of the one process an idempotency key names, if it matches.
  Result<IdList> ListByKey(std::optional<events::ProcessStatus> status, std::string_view workflow,
                           Page page, const ListNarrowing& narrow) {
    IdList list;
    auto stream = FindByIdempotencyKey(narrow.idempotency_key);
    if (!stream.ok()) return stream.status();
    if (!*stream) return list;
    std::string value;
    rocksdb::Status s =
        rocks_->db()->Get(read_, cf(internal::kIndex), format::ProcessKey(**stream), &value);
    if (s.IsNotFound()) return list;
    KEEL_RETURN_IF_ERROR(ToStatus(s, "read index"));
    auto record = format::DecodeProcessRecord(value);
    if (!record) return Status::Corruption("malformed index record of " + **stream);
    if ((status && record->status != *status) ||
        (!workflow.empty() && record->workflow != workflow) ||
        record->created_ns < narrow.since_ns || record->created_ns > narrow.until_ns) {
      return list;
    }
    list.total = 1;
    if (page.offset == 0 && page.limit > 0) list.ids.push_back(**stream);
    return list;
  }

  Result<std::vector<std::string>> UnfinishedProcesses() override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    std::vector<std::pair<int64_t, std::string>> found;
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(read_, cf(internal::kIndex)));
    for (int s = 0; s <= static_cast<int>(events::ProcessStatus::kFailed); ++s) {
      auto status = static_cast<events::ProcessStatus>(s);
      if (events::IsTerminal(status)) continue;
      std::string prefix = format::StatusPrefix(status);
      for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        std::string_view key = it->key().ToStringView();
        found.emplace_back(format::CreatedAt(key, prefix.size()),
                           std::string(format::StreamAfterCreated(key, prefix.size())));
      }
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read index"));
    std::sort(found.begin(), found.end());
    std::vector<std::string> ids;
    ids.reserve(found.size());
    for (auto& [created, id] : found) ids.push_back(std::move(id));
    return ids;
  }

  Result<std::optional<std::string>> FindByIdempotencyKey(std::string_view key) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    if (key.empty()) return std::optional<std::string>();
    std::string stream;
    rocksdb::Status s =
        rocks_->db()->Get(read_, cf(internal::kIndex), format::IdempotencyKey(key), &stream);
    if (s.IsNotFound()) return std::optional<std::string>();
    KEEL_RETURN_IF_ERROR(ToStatus(s, "read idempotency index"));
    return std::optional<std::string>(std::move(stream));
  }

  Result<std::vector<DueTimer>> DueTimers(int64_t until_ns, size_t limit) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    std::vector<DueTimer> out;
    std::string prefix(1, format::kIndexTimer);
    std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(read_, cf(internal::kIndex)));
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix) && out.size() < limit;
         it->Next()) {
      DueTimer timer;
      std::string_view stream, id;
      if (!format::ParseTimerKey(it->key().ToStringView(), &timer.due_ns, &stream, &id)) {
        return Status::Corruption("malformed due-timer key " +
                                  format::EscapeKey(it->key().ToStringView()));
      }
      if (timer.due_ns > until_ns) break;
      timer.stream = stream;
      timer.timer = id;
      out.push_back(std::move(timer));
    }
    KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read index"));
    return out;
  }

  Result<events::ProcessStatus> StatusOf(std::string_view stream) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    KEEL_RETURN_IF_ERROR(CheckName("stream id", stream));
    std::string value;
    rocksdb::Status s =
        rocks_->db()->Get(read_, cf(internal::kIndex), format::ProcessKey(stream), &value);
    if (s.IsNotFound()) return Status::NotFound("no process " + std::string(stream));
    KEEL_RETURN_IF_ERROR(ToStatus(s, "read index"));
    auto record = format::DecodeProcessRecord(value);
    if (!record) return Status::Corruption("malformed index record of " + std::string(stream));
    return record->status;
  }

  Result<std::vector<Problem>> Verify(std::string_view stream) override {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    return internal::Verify(rocks_.get(), stream);
  }

  StoreStats Stats() const override { return stats_ ? stats_->Snapshot() : StoreStats(); }

 private:
  Status CheckOpen() const { return closed_ ? Status::Aborted("store is closed") : Status::OK(); }
  Status CheckWritable() const {
    KEEL_RETURN_IF_ERROR(CheckOpen());
    return writer_ ? Status::OK() : Status::Refused("store is open read-only");
  }
  rocksdb::ColumnFamilyHandle* cf(Cf which) const { return rocks_->cf(which); }

  // An iterator at the last key of `stream` at or below `seq` in an
  // events-keyed family (events, snapshots). It owns the lower bound it reads
  // through, so it is held by pointer and never moves.
  struct StreamTail {
    std::string prefix;
    rocksdb::Slice lower;
    rocksdb::ReadOptions options;
    std::unique_ptr<rocksdb::Iterator> it;
    bool found() const { return it->Valid() && it->key().starts_with(prefix); }
  };
  std::unique_ptr<StreamTail> SeekLast(Cf family, std::string_view stream, uint64_t seq) const {
    auto tail = std::make_unique<StreamTail>();
    tail->prefix = format::StreamPrefix(stream);
    tail->lower = rocksdb::Slice(tail->prefix);
    tail->options.iterate_lower_bound = &tail->lower;
    tail->it.reset(rocks_->db()->NewIterator(tail->options, cf(family)));
    tail->it->SeekForPrev(format::StreamKey(stream, seq));
    return tail;
  }

  std::unique_ptr<Rocks> rocks_;
  std::unique_ptr<internal::Writer> writer_;  // null for a read-only instance
  // The writer's counters, kept after Close resets writer_; null when read-only.
  const std::shared_ptr<const internal::WriterStats> stats_;
  const bool read_only_;
  std::atomic<bool> closed_{false};
  rocksdb::WriteOptions write_options_;
  const rocksdb::ReadOptions read_;
};

}  // namespace

Result<std::unique_ptr<EventStore>> EventStore::Open(const StoreOptions& options) {
  if (options.path.empty()) return Status::InvalidArgument("store path is empty");
  const std::string db_path = data_dir::Db(options.path);
  bool current = false;
  std::optional<uint32_t> marked;
  if (HasDb(options.path)) {
    // Look before opening read-write, which would rewrite files of a store
    // that this keel must leave alone: at the FORMAT file, else in the meta.
    Result<std::optional<uint32_t>> read = format::ReadFormatFile(options.path);
    if (!read.ok()) return read.status();
    marked = *read;
    if (!marked) {
      Result<std::unique_ptr<Rocks>> inspected = Rocks::OpenForInspection(db_path);
      if (!inspected.ok()) return inspected.status();
      KEEL_RETURN_IF_ERROR(CheckFormatVersion(**inspected, options.path, &current));
      KEEL_RETURN_IF_ERROR((*inspected)->Close());
    }
  } else if (!options.create_if_missing) {
    return Status::NotFound("no store at " + options.path);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(options.path, ec);
    if (ec) return Status::IOError("create " + options.path + ": " + ec.message());
  }
  Result<std::unique_ptr<Rocks>> opened = Rocks::OpenReadWrite(db_path, options.create_if_missing);
  if (!opened.ok()) return opened.status();
  std::unique_ptr<Rocks> rocks = std::move(opened).value();
  KEEL_RETURN_IF_ERROR(CheckFormatVersion(*rocks, options.path, &current));
  // A new store, or an older format this keel writes on in its own (format 1
  // differs in the log entries only, and both forms are read).
  if (!current) {
    rocksdb::WriteOptions sync;
    sync.sync = true;
    KEEL_RETURN_IF_ERROR(
        ToStatus(rocks->db()->Put(sync, rocks->cf(internal::kMeta), format::kMetaFormatVersion,
                                  format::EncodeU32(format::kFormatVersion)),
                 "write format version"));
  }
  if (marked != format::kFormatVersion) KEEL_RETURN_IF_ERROR(WriteFormatFile(options.path));
  auto writer = std::make_unique<internal::Writer>(rocks.get(), options);
  KEEL_RETURN_IF_ERROR(writer->Start());
  return std::unique_ptr<EventStore>(
      new RocksEventStore(std::move(rocks), std::move(writer), options.durability));
}

Result<std::unique_ptr<EventStore>> EventStore::OpenReadOnly(const std::string& path,
                                                             const std::string& scratch_dir) {
  if (!HasDb(path)) return Status::NotFound("no store at " + path);
  Result<std::optional<uint32_t>> marked = format::ReadFormatFile(path);
  if (!marked.ok()) return marked.status();
  std::error_code ec;
  std::filesystem::create_directories(scratch_dir, ec);
  if (ec) return Status::IOError("create " + scratch_dir + ": " + ec.message());
  Result<std::unique_ptr<Rocks>> opened = Rocks::OpenSecondary(data_dir::Db(path), scratch_dir);
  if (!opened.ok()) return opened.status();
  bool current = false;
  KEEL_RETURN_IF_ERROR(CheckFormatVersion(**opened, path, &current));
  return std::unique_ptr<EventStore>(
      new RocksEventStore(std::move(opened).value(), nullptr, Durability::kAsync));
}

}  // namespace keel::store
