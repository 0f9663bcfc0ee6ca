#include "store/internal/indexer.h"

#include "events/transitions.h"

namespace keel::store::internal {
namespace {

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

void Check(const rocksdb::Status& s) {
  // WriteBatch Put/Delete fail only past the 4 GiB batch limit, which
  // max_batch_events keeps far away.
  s.PermitUncheckedError();
}

}  // namespace

Indexer::Indexer(std::string_view stream, StreamState* state, rocksdb::WriteBatch* batch,
                 rocksdb::ColumnFamilyHandle* index, CounterDeltas* counters)
    : stream_(stream),
      state_(state),
      batch_(batch),
      index_(index),
      counters_(counters),
      existed_(state->record.has_value()) {
  if (existed_) old_status_ = state->record->status;
}

void Indexer::OnEvent(const fb::Envelope& event, int64_t time_ns) {
  using E = events::EventType;
  E type = event.body_type();
  switch (type) {
    case E::ProcessCreated: {
      // The writer admits ProcessCreated only as a stream's first event.
      const auto* body = event.body_as_ProcessCreated();
      format::ProcessRecord record;
      record.status = events::ProcessStatus::kPending;
      record.created_ns = time_ns;
      record.workflow = View(body->workflow());
      record.idempotency_key = View(body->idempotency_key());
      Check(batch_->Put(index_, format::CreationKey(time_ns, stream_), ""));
      Check(batch_->Put(index_, format::WorkflowKey(record.workflow, time_ns, stream_), ""));
      if (!record.idempotency_key.empty()) {
        Check(batch_->Put(index_, format::IdempotencyKey(record.idempotency_key), stream_));
      }
      state_->record = std::move(record);
      return;
    }
    case E::TimerScheduled: {
      const auto* body = event.body_as_TimerScheduled();
      Check(
          batch_->Put(index_, format::TimerKey(body->due_ns(), stream_, View(body->timer())), ""));
      break;
    }
    case E::TimerFired: {
      const auto* body = event.body_as_TimerFired();
      Check(batch_->Delete(index_, format::TimerKey(body->due_ns(), stream_, View(body->timer()))));
      break;
    }
    case E::TimerCancelled: {
      const auto* body = event.body_as_TimerCancelled();
      Check(batch_->Delete(index_, format::TimerKey(body->due_ns(), stream_, View(body->timer()))));
      break;
    }
    default:
      break;
  }
  if (state_->record && events::EntityOf(type) == events::EntityKind::kProcess) {
    // An event the table forbids leaves the status as it was; the runtime
    // refuses those before appending, and Verify reports them.
    if (auto next = events::Next(state_->record->status, type)) state_->record->status = *next;
  }
}

void Indexer::Count(const format::ProcessRecord& record, int64_t delta) {
  (*counters_)[format::StatusCountKey(record.status)] += delta;
  (*counters_)[format::WorkflowStatusCountKey(record.workflow, record.status)] += delta;
}

void Indexer::Finish() {
  if (!state_->record) return;
  format::ProcessRecord& record = *state_->record;
  if (existed_ && record.status == old_status_) return;
  if (existed_) {
    format::ProcessRecord old = record;
    old.status = old_status_;
    Check(batch_->Delete(index_, format::StatusKey(old_status_, record.created_ns, stream_)));
    Check(batch_->Delete(index_, format::WorkflowStatusKey(record.workflow, old_status_,
                                                           record.created_ns, stream_)));
    Count(old, -1);
  }
  Check(batch_->Put(index_, format::StatusKey(record.status, record.created_ns, stream_), ""));
  Check(batch_->Put(
      index_, format::WorkflowStatusKey(record.workflow, record.status, record.created_ns, stream_),
      ""));
  Count(record, +1);
  Check(batch_->Put(index_, format::ProcessKey(stream_), format::EncodeProcessRecord(record)));
}

}  // namespace keel::store::internal
