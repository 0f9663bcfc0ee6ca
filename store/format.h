#pragma once

// The on-disk format of the event store: RocksDB column families and the
// layout of every key and value in them. All integers in keys are big-endian so
// that RocksDB's bytewise order is numeric order. Stream ids, workflow names
// and idempotency keys never contain a 0x00 byte (Append refuses them), so
// 0x00 ends a variable-length field inside a key.
//
// Changing any layout here requires a new kFormatVersion.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "events/transitions.h"
#include "keel/status.h"

namespace keel::store::format {

// Bumped on any incompatible change below. A store whose meta says newer is
// refused (NotSupported) and left untouched.
inline constexpr uint32_t kFormatVersion = 2;

// A copy of the format version in DIR/FORMAT beside db/ ("2\n"), written
// once the meta holds it: Open reads it to decide whether it may open the
// store read-write without first replaying the WAL read-only to read the
// meta (twice the recovery time). A keel that bumps the version writes both.
//
// The version in DIR/FORMAT; nullopt when there is no such file (a store made
// before the file existed, or a crash before it was first written: the meta
// says). The file is replaced by rename, never written in place, so a FORMAT
// that does not hold a version is damage: Corruption. NotSupported for a
// version newer than kFormatVersion. Reads only.
Result<std::optional<uint32_t>> ReadFormatFile(const std::string& dir);
// NotSupported: the store at `dir` has a newer format `version` (said by its
// FORMAT file, or else by its meta).
Status NewerFormat(const std::string& dir, uint32_t version, bool from_file);

// ---- column families --------------------------------------------------------

// events: stream | 0x00 | seq (u64 BE) -> stored event value
//   value = Envelope flatbuffer | 32-byte chain hash (events/codec.h, Seal).
//   seq runs 1, 2, 3, ... per stream without gaps.
inline constexpr char kEventsCf[] = "events";

// log: global_seq (u64 BE) of the first event of an append
//   -> 0x00 | count (u32 BE) | stream | 0x00 | seq (u64 BE) of that event:
//   the append's `count` events, global seqs and stream seqs both consecutive.
//   global_seq runs 1, 2, 3, ... over the whole store: the total commit order.
//   Format 1 wrote one entry per event whose value is the event's key (a run
//   of 1 without the prefix; stream ids never start with 0x00): both are read.
//   One entry per append, not per event: half the memtable inserts of a commit.
inline constexpr char kLogCf[] = "log";

// snapshots: stream | 0x00 | seq (u64 BE) -> fb::Snapshot flatbuffer
//   {schema_version, seq, state_json}: events::ToJson of the fold at `seq`.
//   The newest one under a bound is found by a reverse seek.
inline constexpr char kSnapshotsCf[] = "snapshots";

// index: projections of the events, written in the same WriteBatch. The first
// byte of a key says which index it belongs to (the kIndex* tags below).
inline constexpr char kIndexCf[] = "index";

// meta: store-wide values, keys are ASCII names (kMeta* below).
inline constexpr char kMetaCf[] = "meta";

// definitions: content hash (as given, hex) -> workflow definition JSON.
//   An extension of DESIGN.md: a log can be replayed without the original file.
inline constexpr char kDefinitionsCf[] = "definitions";

// In the order the store opens them; RocksDB's "default" CF is unused.
inline constexpr const char* kColumnFamilies[] = {kEventsCf, kLogCf,  kSnapshotsCf,
                                                  kIndexCf,  kMetaCf, kDefinitionsCf};
inline constexpr size_t kNumColumnFamilies = 6;

// ---- meta keys ----------------------------------------------------------------

// -> u32 BE: the kFormatVersion that wrote the store.
inline constexpr char kMetaFormatVersion[] = "format_version";
// -> u64 BE: highest global seq committed (also the last key of `log`).
inline constexpr char kMetaLastGlobalSeq[] = "last_global_seq";

// ---- index keys ---------------------------------------------------------------
// `~created` is UINT64_MAX - created_ns (u64 BE): newest process first.
// `status` is one byte, the events::ProcessStatus value.
// Processes enter the index with their ProcessCreated event; a stream that has
// none is not indexed.

// 'p' | stream -> process record (see ProcessRecord): lets the writer find
//   and delete a process's old index keys without reading its events.
inline constexpr char kIndexProcess = 'p';
// 's' | status | ~created | stream -> "": by status, newest first.
inline constexpr char kIndexByStatus = 's';
// 'c' | ~created | stream -> "": every process, newest first.
inline constexpr char kIndexByCreation = 'c';
// 'w' | workflow | 0x00 | ~created | stream -> "": by workflow, newest first.
inline constexpr char kIndexByWorkflow = 'w';
// 'v' | workflow | 0x00 | status | ~created | stream -> "": by both.
inline constexpr char kIndexByWorkflowStatus = 'v';
// 'k' | idempotency key -> stream. A key names one process for good.
inline constexpr char kIndexIdempotency = 'k';
// 't' | due (i64 with the sign bit flipped, BE) | stream | 0x00 | timer -> "":
//   armed timers, earliest first. TimerScheduled puts it; TimerFired and
//   TimerCancelled (which carry the same due) delete it.
inline constexpr char kIndexTimer = 't';
// 'n' | status -> u64 BE: number of processes in that status.
inline constexpr char kIndexStatusCount = 'n';
// 'm' | workflow | 0x00 | status -> u64 BE: the same per workflow.
inline constexpr char kIndexWorkflowStatusCount = 'm';

// The per-process index record ('p' value):
//   status (1 byte) | created_ns (u64 BE) | workflow length (u32 BE) | workflow
//   | idempotency key (the rest)
struct ProcessRecord {
  events::ProcessStatus status = events::ProcessStatus::kPending;
  int64_t created_ns = 0;
  std::string workflow;
  std::string idempotency_key;
};

// ---- encoders and decoders ------------------------------------------------------

void PutBigEndian64(std::string* out, uint64_t v);
uint64_t GetBigEndian64(const char* p);
std::string EncodeU64(uint64_t v);
std::string EncodeU32(uint32_t v);
// nullopt unless `value` is exactly 8 (or 4) bytes.
std::optional<uint64_t> DecodeU64(std::string_view value);
std::optional<uint32_t> DecodeU32(std::string_view value);

// stream | 0x00: the prefix of every events/snapshots key of the stream.
std::string StreamPrefix(std::string_view stream);
// stream | 0x00 | seq: events and snapshots keys.
std::string StreamKey(std::string_view stream, uint64_t seq);
// Splits a StreamKey; false when malformed.
bool ParseStreamKey(std::string_view key, std::string_view* stream, uint64_t* seq);
std::string LogKey(uint64_t global_seq);
// The value of a log entry: the run of `count` events from `stream`/`seq`.
std::string LogValue(std::string_view stream, uint64_t seq, uint32_t count);
struct LogRun {
  std::string_view stream;
  uint64_t seq = 0;  // of the run's first event
  uint32_t count = 0;
};
// Splits a log value of either format; false when malformed.
bool ParseLogValue(std::string_view value, LogRun* run);
// The global seq of the last event of the log entry `key` -> `value`.
std::optional<uint64_t> LastGlobalSeqOf(std::string_view key, std::string_view value);

std::string ProcessKey(std::string_view stream);
std::string StatusPrefix(events::ProcessStatus status);
std::string StatusKey(events::ProcessStatus status, int64_t created_ns, std::string_view stream);
std::string CreationKey(int64_t created_ns, std::string_view stream);
std::string WorkflowPrefix(std::string_view workflow);
std::string WorkflowKey(std::string_view workflow, int64_t created_ns, std::string_view stream);
std::string WorkflowStatusPrefix(std::string_view workflow, events::ProcessStatus status);
std::string WorkflowStatusKey(std::string_view workflow, events::ProcessStatus status,
                              int64_t created_ns, std::string_view stream);
std::string IdempotencyKey(std::string_view key);
std::string TimerKey(int64_t due_ns, std::string_view stream, std::string_view timer);
std::string StatusCountKey(events::ProcessStatus status);
std::string WorkflowStatusCountKey(std::string_view workflow, events::ProcessStatus status);

// The stream at the end of an 's', 'c', 'w' or 'v' key (after the fixed-width
// ~created field); empty when malformed. `prefix_size` is the length of the
// key before ~created.
std::string_view StreamAfterCreated(std::string_view key, size_t prefix_size);
// ~created of such a key, back as created_ns.
int64_t CreatedAt(std::string_view key, size_t prefix_size);
// Splits a TimerKey; false when malformed.
bool ParseTimerKey(std::string_view key, int64_t* due_ns, std::string_view* stream,
                   std::string_view* timer);

std::string EncodeProcessRecord(const ProcessRecord& record);
std::optional<ProcessRecord> DecodeProcessRecord(std::string_view value);

// fb::Snapshot flatbuffer bytes.
std::string EncodeSnapshot(uint64_t seq, std::string_view state_json);
// Verifies the flatbuffer: Corruption when malformed, NotSupported for a
// newer schema_version.
Status DecodeSnapshot(std::string_view value, uint64_t* seq, std::string* state_json);

// A key for messages: printable bytes as is, others as \xNN.
std::string EscapeKey(std::string_view key);

// The smallest key greater than every key starting with `prefix` (for
// iterate_upper_bound); empty when there is none (all 0xff).
std::string PrefixEnd(std::string_view prefix);

}  // namespace keel::store::format
