#include "store/internal/writer.h"

#include <rocksdb/iterator.h>

#include <algorithm>
#include <chrono>
#include <memory>

#include "events/codec.h"

namespace keel::store::internal {
namespace {

constexpr size_t kMaxNameSize = 1024;

bool ValidName(std::string_view name) {
  return !name.empty() && name.size() <= kMaxNameSize && name.find('\0') == std::string_view::npos;
}

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

int64_t WallNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const std::string kZeroHash(events::kHashSize, '\0');

// Index of the first bucket whose upper bound is >= value (the last is +Inf).
template <size_t N>
size_t BucketOf(const std::array<double, N>& bounds, double value) {
  return std::lower_bound(bounds.begin(), bounds.end() - 1, value) - bounds.begin();
}

template <size_t N>
std::array<uint64_t, N> Cumulative(const std::array<std::atomic<uint64_t>, N>& counts) {
  std::array<uint64_t, N> out{};
  uint64_t total = 0;
  for (size_t i = 0; i < N; ++i) {
    total += counts[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

}  // namespace

void WriterStats::ObserveAppend(std::chrono::nanoseconds latency) {
  const auto ns = static_cast<uint64_t>(std::max<int64_t>(latency.count(), 0));
  latency_[BucketOf(StoreStats::kLatencyBounds, static_cast<double>(ns) * 1e-9)].fetch_add(
      1, std::memory_order_relaxed);
  latency_ns_sum_.fetch_add(ns, std::memory_order_relaxed);
}

void WriterStats::ObserveBatch(uint64_t appends, uint64_t events, std::chrono::nanoseconds write) {
  batch_[BucketOf(StoreStats::kBatchBounds, static_cast<double>(appends))].fetch_add(
      1, std::memory_order_relaxed);
  batch_appends_sum_.fetch_add(appends, std::memory_order_relaxed);
  events_.fetch_add(events, std::memory_order_relaxed);
  write_ns_sum_.fetch_add(static_cast<uint64_t>(std::max<int64_t>(write.count(), 0)),
                          std::memory_order_relaxed);
}

StoreStats WriterStats::Snapshot() const {
  StoreStats stats;
  stats.append_latency_buckets = Cumulative(latency_);
  stats.appends = stats.append_latency_buckets.back();
  stats.append_latency_seconds_sum =
      static_cast<double>(latency_ns_sum_.load(std::memory_order_relaxed)) * 1e-9;
  stats.batch_appends_buckets = Cumulative(batch_);
  stats.batches = stats.batch_appends_buckets.back();
  stats.batch_appends_sum = batch_appends_sum_.load(std::memory_order_relaxed);
  stats.events = events_.load(std::memory_order_relaxed);
  stats.write_seconds_sum =
      static_cast<double>(write_ns_sum_.load(std::memory_order_relaxed)) * 1e-9;
  return stats;
}

Status ValidateRequest(const AppendRequest& request) {
  if (!ValidName(request.stream)) {
    return Status::InvalidArgument("stream id must be 1.." + std::to_string(kMaxNameSize) +
                                   " bytes without NUL");
  }
  if (request.events.empty()) {
    return Status::InvalidArgument("append to " + request.stream + " has no events");
  }
  for (size_t i = 0; i < request.events.size(); ++i) {
    const events::Draft& draft = request.events[i];
    std::string where = "append to " + request.stream + ", event " + std::to_string(i) + ": ";
    flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(draft.bytes.data()),
                                   draft.bytes.size());
    if (draft.bytes.empty() || !fb::VerifyEnvelopeBuffer(verifier)) {
      return Status::InvalidArgument(where + "not an Envelope flatbuffer");
    }
    const auto* env = flatbuffers::GetRoot<fb::Envelope>(draft.bytes.data());
    // Seal() fills these in place: they must be present (events:: builders).
    const auto* table = reinterpret_cast<const flatbuffers::Table*>(env);
    if (!table->CheckField(fb::Envelope::VT_SEQ) ||
        !table->CheckField(fb::Envelope::VT_GLOBAL_SEQ) ||
        !table->CheckField(fb::Envelope::VT_TIME_NS) || env->prev_hash() == nullptr) {
      return Status::InvalidArgument(where + "not a Draft from an events:: builder");
    }
    if (env->body_type() == events::EventType::NONE || env->body_type() != draft.type) {
      return Status::InvalidArgument(where + "body type does not match the Draft's type");
    }
    if (View(env->stream_id()) != request.stream) {
      return Status::InvalidArgument(where + "event is for stream " +
                                     std::string(View(env->stream_id())));
    }
    if (const auto* created = env->body_as_ProcessCreated()) {
      if (!ValidName(View(created->workflow()))) {
        return Status::InvalidArgument(where + "workflow name must be 1.." +
                                       std::to_string(kMaxNameSize) + " bytes without NUL");
      }
      if (View(created->idempotency_key()).find('\0') != std::string_view::npos) {
        return Status::InvalidArgument(where + "idempotency key contains NUL");
      }
    }
  }
  return Status::OK();
}

Writer::Writer(Rocks* rocks, const StoreOptions& options)
    : rocks_(rocks), options_(options), cache_(options.stream_cache_entries) {
  write_options_.sync = options.durability == Durability::kSync;
}

Writer::~Writer() { Stop(); }

Status Writer::Start() {
  KEEL_RETURN_IF_ERROR(LoadCounters());
  std::unique_ptr<rocksdb::Iterator> it(
      rocks_->db()->NewIterator(rocksdb::ReadOptions(), rocks_->cf(kLog)));
  it->SeekToLast();
  if (it->Valid()) {
    auto g = format::LastGlobalSeqOf(it->key().ToStringView(), it->value().ToStringView());
    if (!g) return Status::Corruption("malformed last log entry");
    last_global_seq_ = *g;
  }
  KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read log"));
  thread_ = std::thread([this] { Run(); });
  return Status::OK();
}

Status Writer::LoadCounters() {
  counters_.clear();
  std::unique_ptr<rocksdb::Iterator> it(
      rocks_->db()->NewIterator(rocksdb::ReadOptions(), rocks_->cf(kIndex)));
  for (char tag : {format::kIndexStatusCount, format::kIndexWorkflowStatusCount}) {
    std::string prefix(1, tag);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      auto v = format::DecodeU64(it->value().ToStringView());
      if (!v) return Status::Corruption("malformed index counter");
      counters_[it->key().ToString()] = *v;
    }
  }
  return ToStatus(it->status(), "read index counters");
}

void Writer::Submit(AppendRequest request, AppendCallback done) {
  Pending pending;
  pending.submitted = std::chrono::steady_clock::now();
  pending.error = ValidateRequest(request);
  pending.request = std::move(request);
  pending.done = std::move(done);
  Enqueue(std::move(pending));
}

Result<AppendResult> Writer::SubmitAndWait(AppendRequest request) {
  std::promise<Result<AppendResult>> promise;
  auto future = promise.get_future();
  Pending pending;
  pending.submitted = std::chrono::steady_clock::now();
  pending.error = ValidateRequest(request);
  pending.request = std::move(request);
  pending.promise = &promise;
  Enqueue(std::move(pending));
  return future.get();
}

void Writer::Enqueue(Pending pending) {
  bool queued = false, wake = false;
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_ && !committing_ && queue_.empty() && options_.commit_on_caller) {
      // Nobody is committing: this caller does, and saves the two thread
      // hand-offs (to the writer and back) that a lone append would cost.
      committing_ = true;
      lock.unlock();
      std::vector<Pending> batch;
      batch.push_back(std::move(pending));
      Commit(batch);
      lock.lock();
      committing_ = false;
      if (!queue_.empty() || stopping_) cv_.notify_one();  // queued meanwhile
      return;
    }
    if (!stopping_) {
      // Only the push onto an empty queue with nobody committing needs to
      // wake the writer: otherwise it was woken already, or the committer
      // looks at the queue when it is done. Waking once per group rather
      // than once per append saves a futex call and a context switch per
      // append under load.
      wake = queue_.empty() && !committing_;
      queue_.push_back(std::move(pending));
      queued = true;
    }
  }
  if (queued) {
    if (wake) cv_.notify_one();
    return;
  }
  Status aborted = Status::Aborted("store is closed");
  if (pending.promise) {
    pending.promise->set_value(aborted);
  } else if (pending.done) {
    pending.done(aborted);
  }
}

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void Writer::Run() {
  std::vector<Pending> batch;
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return !committing_ && (!queue_.empty() || stopping_); });
    if (queue_.empty()) return;  // stopping, and everything is committed
    size_t events = 0;
    while (!queue_.empty() && (batch.empty() || events < options_.max_batch_events)) {
      events += queue_.front().request.events.size();
      batch.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    committing_ = true;
    lock.unlock();
    Commit(batch);
    batch.clear();
    lock.lock();
    committing_ = false;
  }
}

Result<StreamState> Writer::Load(const std::string& stream) {
  StreamState state;
  state.last_hash = kZeroHash;
  std::string prefix = format::StreamPrefix(stream);
  rocksdb::ReadOptions ro;
  rocksdb::Slice lower(prefix);
  ro.iterate_lower_bound = &lower;
  std::unique_ptr<rocksdb::Iterator> it(rocks_->db()->NewIterator(ro, rocks_->cf(kEvents)));
  it->SeekForPrev(format::StreamKey(stream, UINT64_MAX));
  if (it->Valid() && it->key().starts_with(prefix)) {
    std::string_view s;
    if (!format::ParseStreamKey(it->key().ToStringView(), &s, &state.last_seq) ||
        it->value().size() < events::kHashSize) {
      return Status::Corruption("stream " + stream + ": malformed last event");
    }
    state.last_hash.assign(it->value().data() + it->value().size() - events::kHashSize,
                           events::kHashSize);
  }
  KEEL_RETURN_IF_ERROR(ToStatus(it->status(), "read stream " + stream));
  std::string record;
  rocksdb::Status s = rocks_->db()->Get(rocksdb::ReadOptions(), rocks_->cf(kIndex),
                                        format::ProcessKey(stream), &record);
  if (s.ok()) {
    state.record = format::DecodeProcessRecord(record);
    if (!state.record) return Status::Corruption("stream " + stream + ": malformed index record");
  } else if (!s.IsNotFound()) {
    return ToStatus(s, "read index record of " + stream);
  }
  return state;
}

Status Writer::Admit(const AppendRequest& request, const StreamState& state,
                     std::unordered_map<std::string, std::string>& claimed_keys) {
  if (state.last_seq != request.expected_seq) {
    return Status::Conflict("stream " + request.stream + " expected seq " +
                            std::to_string(request.expected_seq) + ", is at " +
                            std::to_string(state.last_seq));
  }
  for (size_t i = 0; i < request.events.size(); ++i) {
    if (request.events[i].type != events::EventType::ProcessCreated) continue;
    if (state.last_seq + i != 0) {
      return Status::InvalidArgument("stream " + request.stream +
                                     ": ProcessCreated must be its first event");
    }
    const auto* env = flatbuffers::GetRoot<fb::Envelope>(request.events[i].bytes.data());
    std::string key(View(env->body_as_ProcessCreated()->idempotency_key()));
    if (key.empty()) continue;
    std::string owner;
    if (auto it = claimed_keys.find(key); it != claimed_keys.end()) {
      owner = it->second;
    } else {
      rocksdb::Status s = rocks_->db()->Get(rocksdb::ReadOptions(), rocks_->cf(kIndex),
                                            format::IdempotencyKey(key), &owner);
      if (!s.ok() && !s.IsNotFound()) return ToStatus(s, "read idempotency index");
    }
    if (!owner.empty() && owner != request.stream) {
      return Status::Conflict("idempotency key " + key + " already names process " + owner);
    }
    claimed_keys[key] = request.stream;
  }
  return Status::OK();
}

void Writer::Commit(std::vector<Pending>& batch) {
  // Strictly increasing per batch: commit times order processes in the index.
  const int64_t now = std::max(WallNs(), last_time_ns_ + 1);
  uint64_t global_seq = last_global_seq_;
  rocksdb::WriteBatch wb;
  std::unordered_map<std::string, StreamState> touched;
  std::unordered_map<std::string, std::string> claimed_keys;
  CounterDeltas counter_deltas;
  std::vector<Result<AppendResult>> results;
  results.reserve(batch.size());

  for (Pending& pending : batch) {
    if (!pending.error.ok()) {
      results.emplace_back(pending.error);
      continue;
    }
    AppendRequest& request = pending.request;
    auto found = touched.find(request.stream);
    if (found == touched.end()) {
      if (StreamState* cached = cache_.Find(request.stream)) {
        found = touched.emplace(request.stream, *cached).first;
      } else {
        Result<StreamState> loaded = Load(request.stream);
        if (!loaded.ok()) {
          results.emplace_back(loaded.status());
          continue;
        }
        found = touched.emplace(request.stream, std::move(loaded).value()).first;
      }
    }
    StreamState& state = found->second;
    if (Status admitted = Admit(request, state, claimed_keys); !admitted.ok()) {
      results.emplace_back(std::move(admitted));
      continue;
    }

    AppendResult result;
    result.first_seq = state.last_seq + 1;
    result.time_ns = now;
    result.values.reserve(request.events.size());
    Indexer indexer(request.stream, &state, &wb, rocks_->cf(kIndex), &counter_deltas);
    for (events::Draft& draft : request.events) {
      uint64_t seq = state.last_seq + 1;
      ++global_seq;
      std::string value = events::Seal(std::move(draft), seq, global_seq, now, state.last_hash);
      std::string key = format::StreamKey(request.stream, seq);
      wb.Put(rocks_->cf(kEvents), key, value).PermitUncheckedError();
      const auto& sealed = *flatbuffers::GetRoot<fb::Envelope>(value.data());
      indexer.OnEvent(sealed, sealed.time_ns());
      state.last_seq = seq;
      state.last_hash.assign(value.data() + value.size() - events::kHashSize, events::kHashSize);
      result.values.push_back(std::move(value));
    }
    indexer.Finish();
    if (!request.events.empty()) {
      const auto count = static_cast<uint32_t>(request.events.size());
      wb.Put(rocks_->cf(kLog), format::LogKey(global_seq - count + 1),
             format::LogValue(request.stream, result.first_seq, count))
          .PermitUncheckedError();
    }
    result.last_seq = state.last_seq;
    result.last_global_seq = global_seq;
    result.last_hash = state.last_hash;
    results.emplace_back(std::move(result));
  }

  std::vector<std::pair<std::string, uint64_t>> counters;
  counters.reserve(counter_deltas.size());
  for (const auto& [key, delta] : counter_deltas) {
    if (delta == 0) continue;
    auto it = counters_.find(key);
    uint64_t value = (it == counters_.end() ? 0 : it->second) + delta;
    wb.Put(rocks_->cf(kIndex), key, format::EncodeU64(value)).PermitUncheckedError();
    counters.emplace_back(key, value);
  }

  Status written;
  if (global_seq != last_global_seq_) {
    wb.Put(rocks_->cf(kMeta), format::kMetaLastGlobalSeq, format::EncodeU64(global_seq))
        .PermitUncheckedError();
    const auto started = std::chrono::steady_clock::now();
    if (!write_error_.empty()) {
      // RocksDB stopped writing after the failure. Resume tries again; Busy
      // while RocksDB's own recovery from a full disk waits for free space
      // (it polls, and wants room for a memtable flush).
      rocksdb::Status resumed = rocks_->db()->Resume();
      if (!resumed.ok()) {
        written = Status::IOError("the store stopped writing after a failed write (" +
                                  write_error_ + "); it writes again once the disk has room");
      }
    }
    if (written.ok()) {
      written = ToStatus(rocks_->db()->Write(write_options_, &wb), "write batch");
      write_error_ = written.ok() ? "" : written.message();
    }
    if (written.ok()) {
      uint64_t appends = 0;
      for (const auto& result : results) appends += result.ok() ? 1 : 0;
      stats_->ObserveBatch(appends, global_seq - last_global_seq_,
                           std::chrono::steady_clock::now() - started);
    }
  }
  if (written.ok()) {
    for (auto& [stream, state] : touched) {
      // Finished processes rarely append again: keep the cache for live ones.
      if (state.record && events::IsTerminal(state.record->status)) {
        cache_.Erase(stream);
      } else {
        cache_.Put(stream, std::move(state));
      }
    }
    for (auto& [key, value] : counters) counters_[key] = value;
    last_global_seq_ = global_seq;
    last_time_ns_ = now;
  } else {
    for (auto& result : results) {
      if (result.ok()) result = Status(written);
    }
    Resync();
  }
  Complete(batch, results);
}

void Writer::Complete(std::vector<Pending>& batch, std::vector<Result<AppendResult>>& results) {
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < batch.size(); ++i) {
    // Before handing over the result: a caller that saw it sees it counted.
    stats_->ObserveAppend(now - batch[i].submitted);
    if (batch[i].promise) {
      batch[i].promise->set_value(std::move(results[i]));
    } else if (batch[i].done) {
      batch[i].done(std::move(results[i]));
    }
  }
}

void Writer::Resync() {
  cache_.Clear();
  LoadCounters().IgnoreError();  // a failing DB fails the next write too
  std::unique_ptr<rocksdb::Iterator> it(
      rocks_->db()->NewIterator(rocksdb::ReadOptions(), rocks_->cf(kLog)));
  it->SeekToLast();
  if (it->Valid()) {
    if (auto g = format::LastGlobalSeqOf(it->key().ToStringView(), it->value().ToStringView())) {
      last_global_seq_ = std::max(last_global_seq_, *g);
    }
  }
}

}  // namespace keel::store::internal
