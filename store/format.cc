#include "store/format.h"

#include <flatbuffers/flatbuffers.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "base/data_dir.h"
#include "events/codec.h"
#include "schema/keel_generated.h"

namespace keel::store::format {
namespace {

constexpr size_t kU64 = 8;

uint64_t Inverted(int64_t created_ns) { return UINT64_MAX - static_cast<uint64_t>(created_ns); }

char StatusByte(events::ProcessStatus status) { return static_cast<char>(status); }

}  // namespace

void PutBigEndian64(std::string* out, uint64_t v) {
  char buf[kU64];
  for (int i = 7; i >= 0; --i) {
    buf[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  out->append(buf, kU64);
}

uint64_t GetBigEndian64(const char* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < kU64; ++i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::string EncodeU64(uint64_t v) {
  std::string out;
  PutBigEndian64(&out, v);
  return out;
}

std::string EncodeU32(uint32_t v) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

std::optional<uint64_t> DecodeU64(std::string_view value) {
  if (value.size() != kU64) return std::nullopt;
  return GetBigEndian64(value.data());
}

std::optional<uint32_t> DecodeU32(std::string_view value) {
  if (value.size() != 4) return std::nullopt;
  uint32_t v = 0;
  for (char c : value) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string StreamPrefix(std::string_view stream) {
  std::string key;
  key.reserve(stream.size() + 1);
  key.append(stream);
  key.push_back('\0');
  return key;
}

std::string StreamKey(std::string_view stream, uint64_t seq) {
  std::string key;
  key.reserve(stream.size() + 1 + kU64);
  key.append(stream);
  key.push_back('\0');
  PutBigEndian64(&key, seq);
  return key;
}

bool ParseStreamKey(std::string_view key, std::string_view* stream, uint64_t* seq) {
  if (key.size() < 1 + kU64 || key[key.size() - kU64 - 1] != '\0') return false;
  *stream = key.substr(0, key.size() - kU64 - 1);
  if (stream->find('\0') != std::string_view::npos) return false;
  *seq = GetBigEndian64(key.data() + key.size() - kU64);
  return true;
}

std::string LogKey(uint64_t global_seq) { return EncodeU64(global_seq); }

std::string LogValue(std::string_view stream, uint64_t seq, uint32_t count) {
  std::string value(1, '\0');
  value.append(EncodeU32(count));
  value.append(StreamKey(stream, seq));
  return value;
}

std::optional<uint64_t> LastGlobalSeqOf(std::string_view key, std::string_view value) {
  auto first = DecodeU64(key);
  LogRun run;
  if (!first || !ParseLogValue(value, &run)) return std::nullopt;
  return *first + run.count - 1;
}

bool ParseLogValue(std::string_view value, LogRun* run) {
  if (!value.empty() && value[0] != '\0') {  // format 1: one event's key
    run->count = 1;
    return ParseStreamKey(value, &run->stream, &run->seq) && !run->stream.empty();
  }
  if (value.size() < 5) return false;
  auto count = DecodeU32(value.substr(1, 4));
  if (!count || *count == 0) return false;
  run->count = *count;
  return ParseStreamKey(value.substr(5), &run->stream, &run->seq) && !run->stream.empty() &&
         run->seq > 0;
}

std::string ProcessKey(std::string_view stream) {
  std::string key(1, kIndexProcess);
  key.append(stream);
  return key;
}

std::string StatusPrefix(events::ProcessStatus status) {
  return std::string{kIndexByStatus, StatusByte(status)};
}

std::string StatusKey(events::ProcessStatus status, int64_t created_ns, std::string_view stream) {
  std::string key = StatusPrefix(status);
  PutBigEndian64(&key, Inverted(created_ns));
  key.append(stream);
  return key;
}

std::string CreationKey(int64_t created_ns, std::string_view stream) {
  std::string key(1, kIndexByCreation);
  PutBigEndian64(&key, Inverted(created_ns));
  key.append(stream);
  return key;
}

std::string WorkflowPrefix(std::string_view workflow) {
  std::string key(1, kIndexByWorkflow);
  key.append(workflow);
  key.push_back('\0');
  return key;
}

std::string WorkflowKey(std::string_view workflow, int64_t created_ns, std::string_view stream) {
  std::string key = WorkflowPrefix(workflow);
  PutBigEndian64(&key, Inverted(created_ns));
  key.append(stream);
  return key;
}

std::string WorkflowStatusPrefix(std::string_view workflow, events::ProcessStatus status) {
  std::string key(1, kIndexByWorkflowStatus);
  key.append(workflow);
  key.push_back('\0');
  key.push_back(StatusByte(status));
  return key;
}

std::string WorkflowStatusKey(std::string_view workflow, events::ProcessStatus status,
                              int64_t created_ns, std::string_view stream) {
  std::string key = WorkflowStatusPrefix(workflow, status);
  PutBigEndian64(&key, Inverted(created_ns));
  key.append(stream);
  return key;
}

std::string IdempotencyKey(std::string_view idempotency_key) {
  std::string key(1, kIndexIdempotency);
  key.append(idempotency_key);
  return key;
}

std::string TimerKey(int64_t due_ns, std::string_view stream, std::string_view timer) {
  std::string key(1, kIndexTimer);
  PutBigEndian64(&key, static_cast<uint64_t>(due_ns) ^ (uint64_t{1} << 63));
  key.append(stream);
  key.push_back('\0');
  key.append(timer);
  return key;
}

std::string StatusCountKey(events::ProcessStatus status) {
  return std::string{kIndexStatusCount, StatusByte(status)};
}

std::string WorkflowStatusCountKey(std::string_view workflow, events::ProcessStatus status) {
  std::string key(1, kIndexWorkflowStatusCount);
  key.append(workflow);
  key.push_back('\0');
  key.push_back(StatusByte(status));
  return key;
}

std::string_view StreamAfterCreated(std::string_view key, size_t prefix_size) {
  if (key.size() < prefix_size + kU64) return {};
  return key.substr(prefix_size + kU64);
}

int64_t CreatedAt(std::string_view key, size_t prefix_size) {
  if (key.size() < prefix_size + kU64) return 0;
  return static_cast<int64_t>(UINT64_MAX - GetBigEndian64(key.data() + prefix_size));
}

bool ParseTimerKey(std::string_view key, int64_t* due_ns, std::string_view* stream,
                   std::string_view* timer) {
  if (key.size() < 1 + kU64 + 1 || key[0] != kIndexTimer) return false;
  *due_ns = static_cast<int64_t>(GetBigEndian64(key.data() + 1) ^ (uint64_t{1} << 63));
  std::string_view rest = key.substr(1 + kU64);
  size_t zero = rest.find('\0');
  if (zero == std::string_view::npos) return false;
  *stream = rest.substr(0, zero);
  *timer = rest.substr(zero + 1);
  return true;
}

std::string EncodeProcessRecord(const ProcessRecord& record) {
  std::string out(1, StatusByte(record.status));
  PutBigEndian64(&out, static_cast<uint64_t>(record.created_ns));
  out.append(EncodeU32(static_cast<uint32_t>(record.workflow.size())));
  out.append(record.workflow);
  out.append(record.idempotency_key);
  return out;
}

std::optional<ProcessRecord> DecodeProcessRecord(std::string_view value) {
  if (value.size() < 1 + kU64 + 4) return std::nullopt;
  ProcessRecord record;
  auto status = static_cast<uint8_t>(value[0]);
  if (status > static_cast<uint8_t>(events::ProcessStatus::kFailed)) return std::nullopt;
  record.status = static_cast<events::ProcessStatus>(status);
  record.created_ns = static_cast<int64_t>(GetBigEndian64(value.data() + 1));
  uint32_t len = *DecodeU32(value.substr(1 + kU64, 4));
  std::string_view rest = value.substr(1 + kU64 + 4);
  if (rest.size() < len) return std::nullopt;
  record.workflow.assign(rest.substr(0, len));
  record.idempotency_key.assign(rest.substr(len));
  return record;
}

std::string EncodeSnapshot(uint64_t seq, std::string_view state_json) {
  flatbuffers::FlatBufferBuilder fbb(state_json.size() + 64);
  auto json = fbb.CreateString(state_json.data(), state_json.size());
  fbb.Finish(fb::CreateSnapshot(fbb, events::kSchemaVersion, seq, json));
  return std::string(reinterpret_cast<const char*>(fbb.GetBufferPointer()), fbb.GetSize());
}

Status DecodeSnapshot(std::string_view value, uint64_t* seq, std::string* state_json) {
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(value.data()), value.size());
  if (!verifier.VerifyBuffer<fb::Snapshot>(nullptr)) {
    return Status::Corruption("snapshot is not a valid Snapshot flatbuffer");
  }
  const auto* snapshot = flatbuffers::GetRoot<fb::Snapshot>(value.data());
  if (snapshot->schema_version() > events::kSchemaVersion) {
    return Status::NotSupported("snapshot schema_version " +
                                std::to_string(snapshot->schema_version()) +
                                " is newer than this keel");
  }
  *seq = snapshot->seq();
  if (snapshot->state_json() == nullptr) return Status::Corruption("snapshot has no state_json");
  state_json->assign(snapshot->state_json()->data(), snapshot->state_json()->size());
  return Status::OK();
}

Status NewerFormat(const std::string& dir, uint32_t version, bool from_file) {
  return Status::NotSupported("store " + dir + (from_file ? ": its FORMAT says" : ": its meta says") +
                              " format version " + std::to_string(version) +
                              ", newer than this keel reads (up to " +
                              std::to_string(kFormatVersion) + "); left untouched");
}

Result<std::optional<uint32_t>> ReadFormatFile(const std::string& dir) {
  const std::string file = data_dir::FormatFile(dir);
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(file, ec) && !ec) return std::optional<uint32_t>();
    return Status::Corruption("store " + dir + ": cannot read its FORMAT file " + file);
  }
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string_view digits(text);
  if (!digits.empty() && digits.back() == '\n') digits.remove_suffix(1);
  uint64_t version = 0;
  bool valid = !digits.empty() && digits.size() <= 9;
  for (char c : digits) {
    valid = valid && c >= '0' && c <= '9';
    version = version * 10 + static_cast<uint64_t>(c - '0');
  }
  if (!valid || version == 0) {
    return Status::Corruption("store " + dir + ": its FORMAT file holds '" +
                              EscapeKey(text.substr(0, 32)) +
                              "', not a format version; left untouched");
  }
  if (version > kFormatVersion) return NewerFormat(dir, static_cast<uint32_t>(version), true);
  return std::optional<uint32_t>(static_cast<uint32_t>(version));
}

std::string EscapeKey(std::string_view key) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : key) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && u != '\\') {
      out.push_back(c);
    } else {
      out += "\\x";
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 15]);
    }
  }
  return out;
}

std::string PrefixEnd(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last != 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  return end;
}

}  // namespace keel::store::format
