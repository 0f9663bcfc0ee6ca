// The event line JSON. `data` is built from the body's mini-reflection type
// table, so a new event type or field needs no code here.

#include <flatbuffers/minireflect.h>

#include "base/time.h"
#include "events/internal/json_util.h"
#include "events/state.h"

namespace keel::events {
namespace {

using json = nlohmann::json;
using internal::Text;

constexpr std::string_view kJsonSuffix = "_json";
constexpr int kMaxDepth = 16;  // nested tables; the schema has none deeper than 1

json TableJson(const flatbuffers::Table* table, const flatbuffers::TypeTable* type, int depth);

// A scalar at `p`, or nullopt for a type that has no plain JSON form.
std::optional<json> ScalarJson(flatbuffers::ElementaryType et, const uint8_t* p) {
  using flatbuffers::ReadScalar;
  switch (et) {
    case flatbuffers::ET_BOOL:
      return json(ReadScalar<uint8_t>(p) != 0);
    case flatbuffers::ET_CHAR:
      return json(ReadScalar<int8_t>(p));
    case flatbuffers::ET_UCHAR:
      return json(ReadScalar<uint8_t>(p));
    case flatbuffers::ET_SHORT:
      return json(ReadScalar<int16_t>(p));
    case flatbuffers::ET_USHORT:
      return json(ReadScalar<uint16_t>(p));
    case flatbuffers::ET_INT:
      return json(ReadScalar<int32_t>(p));
    case flatbuffers::ET_UINT:
      return json(ReadScalar<uint32_t>(p));
    case flatbuffers::ET_LONG:
      return json(ReadScalar<int64_t>(p));
    case flatbuffers::ET_ULONG:
      return json(ReadScalar<uint64_t>(p));
    case flatbuffers::ET_FLOAT:
      return json(ReadScalar<float>(p));
    case flatbuffers::ET_DOUBLE:
      return json(ReadScalar<double>(p));
    default:
      return std::nullopt;
  }
}

// One field's value, or nullopt to leave the field out (an absent scalar,
// whose schema default mini-reflection does not know; a union; a struct).
std::optional<json> FieldJson(const flatbuffers::Table* table, const flatbuffers::TypeTable* type,
                              size_t i, std::string_view name, int depth) {
  const flatbuffers::TypeCode code = type->type_codes[i];
  const auto et = static_cast<flatbuffers::ElementaryType>(code.base_type);
  const auto offset = flatbuffers::FieldIndexToOffset(static_cast<flatbuffers::voffset_t>(i));
  const flatbuffers::TypeTable* ref =
      code.sequence_ref >= 0 && type->type_refs ? type->type_refs[code.sequence_ref]() : nullptr;

  if (code.is_repeating) {
    const uint8_t* p = table->GetAddressOf(offset);
    if (p == nullptr) return json::array();
    const auto* vec = reinterpret_cast<const flatbuffers::Vector<uint8_t>*>(
        p + flatbuffers::ReadScalar<flatbuffers::uoffset_t>(p));
    json out = json::array();
    if (et == flatbuffers::ET_STRING) {
      const auto* strings =
          reinterpret_cast<const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>*>(
              vec);
      for (auto s : *strings) out.push_back(Text(internal::View(s)));
      return out;
    }
    if (et == flatbuffers::ET_SEQUENCE && ref != nullptr && ref->st == flatbuffers::ST_TABLE &&
        depth < kMaxDepth) {
      const auto* tables =
          reinterpret_cast<const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::Table>>*>(
              vec);
      for (const flatbuffers::Table* t : *tables) out.push_back(TableJson(t, ref, depth + 1));
      return out;
    }
    const size_t size = flatbuffers::InlineSize(et, ref);
    for (flatbuffers::uoffset_t k = 0; k < vec->size(); ++k) {
      auto v = ScalarJson(et, vec->Data() + k * size);
      if (!v) return std::nullopt;
      out.push_back(std::move(*v));
    }
    return out;
  }

  switch (et) {
    case flatbuffers::ET_STRING: {
      auto text = internal::View(table->GetPointer<const flatbuffers::String*>(offset));
      if (name.ends_with(kJsonSuffix)) return internal::ParseJsonField(text);
      return Text(text);
    }
    case flatbuffers::ET_SEQUENCE:
      if (ref != nullptr && ref->st == flatbuffers::ST_TABLE && depth < kMaxDepth) {
        const auto* t = table->GetPointer<const flatbuffers::Table*>(offset);
        return t ? TableJson(t, ref, depth + 1) : json(nullptr);
      }
      return std::nullopt;
    case flatbuffers::ET_UTYPE:
      return std::nullopt;
    default: {
      const uint8_t* p = table->GetAddressOf(offset);
      if (p == nullptr) return std::nullopt;
      return ScalarJson(et, p);
    }
  }
}

json TableJson(const flatbuffers::Table* table, const flatbuffers::TypeTable* type, int depth) {
  json out = json::object();
  for (size_t i = 0; i < type->num_elems; ++i) {
    std::string_view name = type->names ? type->names[i] : "";
    if (name.empty()) continue;
    auto value = FieldJson(table, type, i, name, depth);
    if (!value) continue;
    if (name.ends_with(kJsonSuffix) && !type->type_codes[i].is_repeating &&
        type->type_codes[i].base_type == flatbuffers::ET_STRING) {
      name.remove_suffix(kJsonSuffix.size());
    }
    out[std::string(name)] = std::move(*value);
  }
  return out;
}

// The body's type table, from the Event union's.
const flatbuffers::TypeTable* BodyType(EventType type) {
  const flatbuffers::TypeTable* event = fb::EventTypeTable();
  const auto i = static_cast<size_t>(type);
  if (i == 0 || i >= event->num_elems) return nullptr;
  const int16_t ref = event->type_codes[i].sequence_ref;
  return ref >= 0 ? event->type_refs[ref]() : nullptr;
}

}  // namespace

json ToJson(const StoredEvent& event) {
  const fb::Envelope& env = event.envelope();
  json data = json::object();
  const flatbuffers::TypeTable* body_type = BodyType(env.body_type());
  if (body_type != nullptr && env.body() != nullptr) {
    data = TableJson(reinterpret_cast<const flatbuffers::Table*>(env.body()), body_type, 0);
  }
  return {
      {"stream", Text(event.stream())},         {"seq", event.seq()},
      {"global_seq", event.global_seq()},       {"time", FormatTimeNs(event.time_ns())},
      {"type", EventTypeName(env.body_type())}, {"entity", Text(event.entity())},
      {"actor", Text(event.actor())},           {"data", std::move(data)},
      {"hash", HexHash(event.hash())},
  };
}

}  // namespace keel::events
