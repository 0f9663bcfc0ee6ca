#include "events/codec.h"

#include <openssl/evp.h>

#include <cstring>
#include <memory>

namespace keel::events {
namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

Offset<flatbuffers::String> Str(FlatBufferBuilder& fbb, std::string_view s) {
  return fbb.CreateString(s.empty() ? "" : s.data(), s.size());
}

// Builds an Envelope with placeholder seq/global_seq/time/prev_hash around the
// body made by `body`. ForceDefaults keeps the placeholders in the buffer so
// that Seal() can overwrite them in place.
template <typename BodyFn>
Draft Build(const Header& h, EventType type, BodyFn&& body) {
  FlatBufferBuilder fbb(256);
  fbb.ForceDefaults(true);
  auto stream = Str(fbb, h.stream);
  auto entity = Str(fbb, h.entity);
  auto actor = Str(fbb, h.actor.empty() ? std::string_view("system") : h.actor);
  Offset<void> b = body(fbb).Union();
  fb::Hash32 zero;
  auto env =
      fb::CreateEnvelope(fbb, kSchemaVersion, stream, 0, 0, 0, entity, actor, &zero, type, b);
  fbb.Finish(env);
  return {type, std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize())};
}

struct DigestCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

}  // namespace

const char* EventTypeName(EventType type) {
  if (type == EventType::NONE || type > EventType::MAX) return "";
  return fb::EnumNameEvent(type);
}

EventType EventTypeFromName(std::string_view name) {
  const char* const* names = fb::EnumNamesEvent();
  for (int i = 1; i <= static_cast<int>(EventType::MAX); ++i) {
    if (name == names[i]) return static_cast<EventType>(i);
  }
  return EventType::NONE;
}

std::string ChainHash(std::string_view prev_hash, std::string_view envelope_bytes) {
  // Fetched once: EVP_sha256() would look the implementation up on every
  // init, which costs more than hashing an event.
  static EVP_MD* const kSha256 = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  thread_local std::unique_ptr<EVP_MD_CTX, DigestCtxDeleter> ctx(EVP_MD_CTX_new());
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestInit_ex2(ctx.get(), kSha256, nullptr);
  EVP_DigestUpdate(ctx.get(), prev_hash.data(), prev_hash.size());
  EVP_DigestUpdate(ctx.get(), envelope_bytes.data(), envelope_bytes.size());
  EVP_DigestFinal_ex(ctx.get(), out, &len);
  return std::string(reinterpret_cast<const char*>(out), len);
}

std::string HexHash(std::string_view hash) {
  static const char kDigits[] = "0123456789abcdef";
  std::string hex(hash.size() * 2, '0');
  for (size_t i = 0; i < hash.size(); ++i) {
    auto c = static_cast<unsigned char>(hash[i]);
    hex[2 * i] = kDigits[c >> 4];
    hex[2 * i + 1] = kDigits[c & 15];
  }
  return hex;
}

std::string Seal(Draft draft, uint64_t seq, uint64_t global_seq, int64_t time_ns,
                 std::string_view prev_hash) {
  auto* env = flatbuffers::GetMutableRoot<fb::Envelope>(draft.bytes.data());
  if (env->time_ns() != 0) time_ns = env->time_ns();  // stamped by its author
  bool placeholders =
      env->mutate_seq(seq) && env->mutate_global_seq(global_seq) && env->mutate_time_ns(time_ns);
  assert(placeholders && "a Draft must come from an events:: builder");
  (void)placeholders;
  fb::Hash32* prev = env->mutable_prev_hash();
  std::memcpy(const_cast<uint8_t*>(prev->bytes()->data()), prev_hash.data(), kHashSize);
  std::string hash = ChainHash(prev_hash, draft.bytes);
  draft.bytes.append(hash);
  return std::move(draft.bytes);
}

void Stamp(Draft& draft, uint64_t seq, int64_t time_ns) {
  auto* env = flatbuffers::GetMutableRoot<fb::Envelope>(draft.bytes.data());
  bool placeholders = env->mutate_seq(seq) && env->mutate_time_ns(time_ns);
  assert(placeholders && time_ns != 0 && "a Draft must come from an events:: builder");
  (void)placeholders;
}

StoredEvent StoredEvent::Unsealed(const Draft& stamped) {
  std::string value;
  value.reserve(stamped.bytes.size() + kHashSize);
  value.append(stamped.bytes).append(kHashSize, '\0');
  return StoredEvent(std::move(value));
}

Result<StoredEvent> StoredEvent::Decode(std::string value) {
  if (value.size() <= kHashSize + sizeof(flatbuffers::uoffset_t)) {
    return Status::Corruption("event value truncated: " + std::to_string(value.size()) + " bytes");
  }
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(value.data()),
                                 value.size() - kHashSize);
  if (!fb::VerifyEnvelopeBuffer(verifier)) {
    return Status::Corruption("event value is not a valid Envelope flatbuffer");
  }
  const auto* env = flatbuffers::GetRoot<fb::Envelope>(value.data());
  if (env->schema_version() > kSchemaVersion) {
    return Status::NotSupported("event schema_version " + std::to_string(env->schema_version()) +
                                " is newer than this keel (" + std::to_string(kSchemaVersion) +
                                ")");
  }
  if (env->body_type() == EventType::NONE || env->body_type() > EventType::MAX ||
      env->body() == nullptr) {
    return Status::NotSupported("unknown event body type " +
                                std::to_string(static_cast<int>(env->body_type())));
  }
  if (env->stream_id() == nullptr || env->prev_hash() == nullptr) {
    return Status::Corruption("event has no stream id or prev hash");
  }
  return StoredEvent(std::move(value));
}

std::string_view StoredEvent::prev_hash() const {
  return {reinterpret_cast<const char*>(envelope().prev_hash()->bytes()->data()), kHashSize};
}

static std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}
std::string_view StoredEvent::stream() const { return View(envelope().stream_id()); }
std::string_view StoredEvent::entity() const { return View(envelope().entity_id()); }
std::string_view StoredEvent::actor() const { return View(envelope().actor()); }

bool StoredEvent::HashMatches() const { return ChainHash(prev_hash(), envelope_bytes()) == hash(); }

// ---- builders --------------------------------------------------------------
// One line each: the body's fields in schema order.

#define KEEL_EMPTY_BODY(Name)                                                                    \
  Draft Name(const Header& h) {                                                                  \
    return Build(h, EventType::Name, [&](FlatBufferBuilder& f) { return fb::Create##Name(f); }); \
  }
#define KEEL_REASON_BODY(Name)                                                               \
  Draft Name(const Header& h, std::string_view reason) {                                     \
    return Build(h, EventType::Name,                                                         \
                 [&](FlatBufferBuilder& f) { return fb::Create##Name(f, Str(f, reason)); }); \
  }

Draft ProcessCreated(const Header& h, std::string_view workflow, std::string_view definition_hash,
                     std::string_view inputs_json, std::string_view vars_json,
                     std::string_view idempotency_key, const QueuePlacement& queue) {
  return Build(h, EventType::ProcessCreated, [&](FlatBufferBuilder& f) {
    // A process that names no queue stores none of the queue fields.
    auto queue_name = queue.queue.empty() ? Offset<flatbuffers::String>() : Str(f, queue.queue);
    auto queue_key = queue.queue.empty() || queue.key.empty() ? Offset<flatbuffers::String>()
                                                             : Str(f, queue.key);
    return fb::CreateProcessCreated(f, Str(f, workflow), Str(f, definition_hash),
                                    Str(f, inputs_json), Str(f, vars_json),
                                    Str(f, idempotency_key), /*forked_from=*/0,
                                    /*forked_seq=*/0, queue_name, queue.priority, queue_key);
  });
}
KEEL_EMPTY_BODY(ProcessStarted)
Draft ProcessPauseRequested(const Header& h, std::string_view reason, bool now) {
  return Build(h, EventType::ProcessPauseRequested, [&](FlatBufferBuilder& f) {
    return fb::CreateProcessPauseRequested(f, Str(f, reason), now);
  });
}
KEEL_REASON_BODY(ProcessPaused)
KEEL_REASON_BODY(ProcessResumeRequested)
KEEL_REASON_BODY(ProcessResumed)
KEEL_REASON_BODY(ProcessCancelRequested)
KEEL_REASON_BODY(ProcessCancelled)
KEEL_EMPTY_BODY(ProcessWaiting)
Draft ProcessCompleted(const Header& h, std::string_view outputs_json) {
  return Build(h, EventType::ProcessCompleted, [&](FlatBufferBuilder& f) {
    return fb::CreateProcessCompleted(f, Str(f, outputs_json));
  });
}
KEEL_REASON_BODY(ProcessFailed)
KEEL_REASON_BODY(ProcessRetried)

Draft BranchStarted(const Header& h, const BranchStart& b) {
  return Build(h, EventType::BranchStarted, [&](FlatBufferBuilder& f) {
    return fb::CreateBranchStarted(f, Str(f, b.parent), Str(f, b.fork_task), Str(f, b.name),
                                   b.index, Str(f, b.item_json), Str(f, b.vars_json),
                                   Str(f, b.first_step));
  });
}
KEEL_REASON_BODY(BranchWaiting)
Draft BranchSuspended(const Header& h, std::string_view task, std::string_view kind) {
  return Build(h, EventType::BranchSuspended, [&](FlatBufferBuilder& f) {
    return fb::CreateBranchSuspended(f, Str(f, task), Str(f, kind));
  });
}
KEEL_EMPTY_BODY(BranchResumed)
KEEL_EMPTY_BODY(BranchPaused)
KEEL_REASON_BODY(BranchCompleted)
KEEL_REASON_BODY(BranchFailed)
KEEL_REASON_BODY(BranchCancelled)

Draft TaskScheduled(const Header& h, std::string_view step, std::string_view branch,
                    std::string_view input_json, uint32_t visit, std::string_view rule) {
  return Build(h, EventType::TaskScheduled, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskScheduled(f, Str(f, step), Str(f, branch), Str(f, input_json), visit,
                                   Str(f, rule));
  });
}
Draft TaskStarted(const Header& h, uint32_t attempt, std::string_view idempotency_key) {
  return Build(h, EventType::TaskStarted, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskStarted(f, attempt, Str(f, idempotency_key));
  });
}
Draft TaskWaitingForApproval(const Header& h, std::string_view prompt, std::string_view rule,
                             int64_t expires_ns) {
  return Build(h, EventType::TaskWaitingForApproval, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskWaitingForApproval(f, Str(f, prompt), Str(f, rule), expires_ns);
  });
}
Draft TaskApproved(const Header& h, std::string_view by, std::string_view reason) {
  return Build(h, EventType::TaskApproved, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskApproved(f, Str(f, by), Str(f, reason));
  });
}
Draft TaskRejected(const Header& h, std::string_view by, std::string_view reason,
                   std::string_view next) {
  return Build(h, EventType::TaskRejected, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskRejected(f, Str(f, by), Str(f, reason), Str(f, next));
  });
}
Draft TaskBlocked(const Header& h, std::string_view rule, std::string_view reason) {
  return Build(h, EventType::TaskBlocked, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskBlocked(f, Str(f, rule), Str(f, reason));
  });
}
Draft TaskRetryScheduled(const Header& h, uint32_t attempt, int64_t run_after_ns,
                         std::string_view error) {
  return Build(h, EventType::TaskRetryScheduled, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskRetryScheduled(f, attempt, run_after_ns, Str(f, error));
  });
}
Draft TaskCompleted(const Header& h, std::string_view output_json, std::string_view next,
                    uint64_t signal_seq) {
  return Build(h, EventType::TaskCompleted, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskCompleted(f, Str(f, output_json), Str(f, next), signal_seq);
  });
}
Draft TaskFailed(const Header& h, std::string_view error, std::string_view output_json,
                 bool retryable, std::string_view next) {
  return Build(h, EventType::TaskFailed, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskFailed(f, Str(f, error), Str(f, output_json), retryable, Str(f, next));
  });
}
Draft TaskSkipped(const Header& h, std::string_view reason, std::string_view next) {
  return Build(h, EventType::TaskSkipped, [&](FlatBufferBuilder& f) {
    return fb::CreateTaskSkipped(f, Str(f, reason), Str(f, next));
  });
}
KEEL_REASON_BODY(TaskCancelled)

Draft SignalReceived(const Header& h, std::string_view topic, std::string_view payload_json) {
  return Build(h, EventType::SignalReceived, [&](FlatBufferBuilder& f) {
    return fb::CreateSignalReceived(f, Str(f, topic), Str(f, payload_json));
  });
}
Draft TimerScheduled(const Header& h, std::string_view timer, int64_t due_ns, std::string_view kind,
                     std::string_view task) {
  return Build(h, EventType::TimerScheduled, [&](FlatBufferBuilder& f) {
    return fb::CreateTimerScheduled(f, Str(f, timer), due_ns, Str(f, kind), Str(f, task));
  });
}
Draft TimerFired(const Header& h, std::string_view timer, int64_t due_ns) {
  return Build(h, EventType::TimerFired, [&](FlatBufferBuilder& f) {
    return fb::CreateTimerFired(f, Str(f, timer), due_ns);
  });
}
Draft TimerCancelled(const Header& h, std::string_view timer, int64_t due_ns) {
  return Build(h, EventType::TimerCancelled, [&](FlatBufferBuilder& f) {
    return fb::CreateTimerCancelled(f, Str(f, timer), due_ns);
  });
}
KEEL_REASON_BODY(VariablesSet)

Draft ScheduleCreated(const Header& h, const ScheduleDefinition& d) {
  return Build(h, EventType::ScheduleCreated, [&](FlatBufferBuilder& f) {
    return fb::CreateScheduleCreated(f, Str(f, d.cron), d.every_ms, Str(f, d.time_zone),
                                     Str(f, d.workflow), Str(f, d.definition_hash),
                                     Str(f, d.inputs_json), Str(f, d.overlap),
                                     d.catchup_window_ms, d.jitter_ms);
  });
}
KEEL_REASON_BODY(SchedulePaused)
KEEL_REASON_BODY(ScheduleResumed)
KEEL_REASON_BODY(ScheduleDeleted)
Draft ScheduleFired(const Header& h, int64_t fire_ns, std::string_view process,
                    std::string_view action, bool manual, std::string_view reason) {
  return Build(h, EventType::ScheduleFired, [&](FlatBufferBuilder& f) {
    return fb::CreateScheduleFired(f, fire_ns, Str(f, process), Str(f, action), manual,
                                   Str(f, reason));
  });
}
Draft ScheduleMissed(const Header& h, int64_t after_ns, int64_t until_ns, uint64_t count) {
  return Build(h, EventType::ScheduleMissed, [&](FlatBufferBuilder& f) {
    return fb::CreateScheduleMissed(f, after_ns, until_ns, count);
  });
}

Draft ProcessAdmitted(const Header& h, std::string_view queue) {
  return Build(h, EventType::ProcessAdmitted,
               [&](FlatBufferBuilder& f) { return fb::CreateProcessAdmitted(f, Str(f, queue)); });
}

#undef KEEL_EMPTY_BODY
#undef KEEL_REASON_BODY

}  // namespace keel::events
