#include "events/fork.h"

#include <flatbuffers/minireflect.h>

#include <set>

namespace keel::events {
namespace {

std::string_view View(const flatbuffers::String* s) {
  return s ? std::string_view(s->data(), s->size()) : std::string_view();
}

std::string Quoted(std::string_view s) { return "'" + std::string(s) + "'"; }

// The body's type table, from the Event union's.
const flatbuffers::TypeTable* BodyType(EventType type) {
  const flatbuffers::TypeTable* event = fb::EventTypeTable();
  const auto i = static_cast<size_t>(type);
  if (i == 0 || i >= event->num_elems) return nullptr;
  const int16_t ref = event->type_codes[i].sequence_ref;
  return ref >= 0 ? event->type_refs[ref]() : nullptr;
}

// Adds scalar field `offset` of `table` to the table being built, as stored.
bool CopyScalar(flatbuffers::FlatBufferBuilder& fbb, flatbuffers::ElementaryType et,
                flatbuffers::voffset_t offset, const uint8_t* p) {
  using flatbuffers::ReadScalar;
  switch (et) {
    case flatbuffers::ET_BOOL:
    case flatbuffers::ET_UTYPE:
    case flatbuffers::ET_UCHAR:
      fbb.AddElement<uint8_t>(offset, ReadScalar<uint8_t>(p), 0);
      return true;
    case flatbuffers::ET_CHAR:
      fbb.AddElement<int8_t>(offset, ReadScalar<int8_t>(p), 0);
      return true;
    case flatbuffers::ET_SHORT:
      fbb.AddElement<int16_t>(offset, ReadScalar<int16_t>(p), 0);
      return true;
    case flatbuffers::ET_USHORT:
      fbb.AddElement<uint16_t>(offset, ReadScalar<uint16_t>(p), 0);
      return true;
    case flatbuffers::ET_INT:
      fbb.AddElement<int32_t>(offset, ReadScalar<int32_t>(p), 0);
      return true;
    case flatbuffers::ET_UINT:
      fbb.AddElement<uint32_t>(offset, ReadScalar<uint32_t>(p), 0);
      return true;
    case flatbuffers::ET_LONG:
      fbb.AddElement<int64_t>(offset, ReadScalar<int64_t>(p), 0);
      return true;
    case flatbuffers::ET_ULONG:
      fbb.AddElement<uint64_t>(offset, ReadScalar<uint64_t>(p), 0);
      return true;
    case flatbuffers::ET_FLOAT:
      fbb.AddElement<float>(offset, ReadScalar<float>(p), 0);
      return true;
    case flatbuffers::ET_DOUBLE:
      fbb.AddElement<double>(offset, ReadScalar<double>(p), 0);
      return true;
    default:
      return false;
  }
}

// Copies a body table of strings and scalars into `fbb`, field by field.
Result<flatbuffers::uoffset_t> CopyBody(flatbuffers::FlatBufferBuilder& fbb,
                                        const flatbuffers::Table* body,
                                        const flatbuffers::TypeTable* type) {
  struct StringField {
    flatbuffers::voffset_t offset;
    flatbuffers::Offset<flatbuffers::String> value;
  };
  std::vector<StringField> strings;
  // Strings first: a table's children are built before the table.
  for (size_t i = 0; i < type->num_elems; ++i) {
    const flatbuffers::TypeCode code = type->type_codes[i];
    const auto offset = flatbuffers::FieldIndexToOffset(static_cast<flatbuffers::voffset_t>(i));
    const bool is_string = !code.is_repeating && code.base_type == flatbuffers::ET_STRING;
    if (code.is_repeating || (code.base_type == flatbuffers::ET_SEQUENCE)) {
      if (body->GetAddressOf(offset) != nullptr) {
        return Status::Internal(std::string("field ") + (type->names ? type->names[i] : "?") +
                                " is not a string or a scalar: a fork cannot copy it");
      }
      continue;
    }
    if (!is_string) continue;
    const auto* s = body->GetPointer<const flatbuffers::String*>(offset);
    if (s == nullptr) continue;  // absent stays absent
    std::string_view text = View(s);
    strings.push_back({offset, fbb.CreateString(text.data(), text.size())});
  }
  const flatbuffers::uoffset_t start = fbb.StartTable();
  for (size_t i = 0; i < type->num_elems; ++i) {
    const flatbuffers::TypeCode code = type->type_codes[i];
    const auto et = static_cast<flatbuffers::ElementaryType>(code.base_type);
    if (code.is_repeating || et == flatbuffers::ET_STRING || et == flatbuffers::ET_SEQUENCE)
      continue;
    const auto offset = flatbuffers::FieldIndexToOffset(static_cast<flatbuffers::voffset_t>(i));
    const uint8_t* p = body->GetAddressOf(offset);
    if (p == nullptr) continue;
    if (!CopyScalar(fbb, et, offset, p)) {
      return Status::Internal(std::string("field ") + (type->names ? type->names[i] : "?") +
                              " has a type a fork cannot copy");
    }
  }
  for (const StringField& s : strings) fbb.AddOffset(s.offset, s.value);
  return fbb.EndTable(start);
}

}  // namespace

Result<Draft> CopyEvent(const StoredEvent& event, const Header& h) {
  const fb::Envelope& env = event.envelope();
  const flatbuffers::TypeTable* type = BodyType(env.body_type());
  if (type == nullptr || env.body() == nullptr) {
    return Status::Internal("event seq " + std::to_string(event.seq()) + " has no body to copy");
  }
  flatbuffers::FlatBufferBuilder fbb(256);
  fbb.ForceDefaults(true);  // the placeholders must be in the buffer (Seal fills them)
  auto body = CopyBody(fbb, reinterpret_cast<const flatbuffers::Table*>(env.body()), type);
  if (!body.ok()) return body.status();
  auto stream = fbb.CreateString(h.stream.data(), h.stream.size());
  auto entity = fbb.CreateString(h.entity.data(), h.entity.size());
  std::string_view actor = h.actor.empty() ? std::string_view("system") : h.actor;
  auto actor_offset = fbb.CreateString(actor.data(), actor.size());
  fb::Hash32 zero;
  auto out = fb::CreateEnvelope(fbb, kSchemaVersion, stream, 0, 0, 0, entity, actor_offset, &zero,
                                env.body_type(), flatbuffers::Offset<void>(*body));
  fbb.Finish(out);
  return Draft{env.body_type(),
               std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize())};
}

Result<ForkCut> FindForkCut(const std::vector<StoredEvent>& log, std::string_view from,
                            uint32_t visit) {
  if (log.empty() || log.front().type() != EventType::ProcessCreated) {
    return Status::Corruption("the log does not start with ProcessCreated");
  }
  const std::string_view process = log.front().stream();
  // A visit given names a step; otherwise a task id is tried first.
  const bool by_task = visit == 0;
  const uint32_t wanted = visit == 0 ? 1 : visit;
  const ForkCut* by_step = nullptr;
  ForkCut step_cut;
  std::set<uint32_t> visits_seen;  // of the step, for the refusal
  for (const StoredEvent& e : log) {
    if (e.type() != EventType::TaskScheduled) continue;
    const auto* b = e.envelope().body_as_TaskScheduled();
    ForkCut cut{e.seq() - 1, std::string(e.entity()), std::string(View(b->step())),
                std::string(View(b->branch())), b->visit()};
    if (by_task && e.entity() == from) return cut;  // its first start
    if (cut.step != from) continue;
    visits_seen.insert(cut.visit);
    if (by_step == nullptr && cut.visit == wanted) {
      step_cut = std::move(cut);
      by_step = &step_cut;
    }
  }
  if (by_step != nullptr) return *by_step;
  if (visits_seen.empty()) {
    return Status::Refused("step or task " + Quoted(from) + " never began in process " +
                           Quoted(process));
  }
  std::string seen;
  for (uint32_t v : visits_seen) seen += (seen.empty() ? "" : ", ") + std::to_string(v);
  return Status::Refused("step " + Quoted(from) + " has no visit " + std::to_string(wanted) +
                         " in process " + Quoted(process) + " (visits that began: " + seen + ")");
}

Result<std::vector<Draft>> ForkedStream(const std::vector<StoredEvent>& log, uint64_t cut_seq,
                                        const ForkStart& start) {
  if (log.empty() || log.front().type() != EventType::ProcessCreated) {
    return Status::Corruption("the log does not start with ProcessCreated");
  }
  if (cut_seq == 0 || log.size() < cut_seq) {
    return Status::Corruption("the log holds " + std::to_string(log.size()) +
                              " events, the fork copies " + std::to_string(cut_seq));
  }
  const StoredEvent& source_created = log.front();
  const std::string_view source = source_created.stream();
  const auto* c = source_created.envelope().body_as_ProcessCreated();
  std::vector<Draft> out;
  out.reserve(cut_seq);
  {
    flatbuffers::FlatBufferBuilder fbb(256);
    fbb.ForceDefaults(true);
    auto str = [&](std::string_view s) { return fbb.CreateString(s.data(), s.size()); };
    auto body = fb::CreateProcessCreated(fbb, str(View(c->workflow())),
                                         str(View(c->definition_hash())), str(start.inputs_json),
                                         str(View(c->vars_json())), str(""), str(source), cut_seq);
    std::string_view actor = start.actor.empty() ? std::string_view("system") : start.actor;
    fb::Hash32 zero;
    auto env = fb::CreateEnvelope(fbb, kSchemaVersion, str(start.id), 0, 0, 0, str(start.id),
                                  str(actor), &zero, EventType::ProcessCreated, body.Union());
    fbb.Finish(env);
    Draft created{
        EventType::ProcessCreated,
        std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize())};
    Stamp(created, 1, start.time_ns);
    out.push_back(std::move(created));
  }
  for (uint64_t seq = 2; seq <= cut_seq; ++seq) {
    const StoredEvent& e = log[seq - 1];
    if (e.seq() != seq) {
      return Status::Corruption("the log's event " + std::to_string(seq) + " has seq " +
                                std::to_string(e.seq()));
    }
    const std::string_view entity = e.entity() == source ? start.id : e.entity();
    auto copy = CopyEvent(e, {start.id, entity, e.actor()});
    if (!copy.ok()) return copy.status();
    Stamp(*copy, seq, e.time_ns());
    out.push_back(std::move(*copy));
  }
  return out;
}

}  // namespace keel::events
