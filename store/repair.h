#pragma once

// Recovering a store whose write-ahead log is damaged. Every open refuses such
// a store (Corruption), so that an acknowledged event never silently
// disappears; dropping the damaged record and everything after it happens only
// here, on request, with a report of what was lost (docs/architecture.md).

#include <cstdint>
#include <string>
#include <vector>

#include "keel/status.h"
#include "store/event_store.h"

namespace keel::store {

// How much a store holds, as its log and index counters say.
struct Census {
  uint64_t events = 0;     // = the last global seq: the log is dense from 1
  uint64_t processes = 0;  // per the index's status counters
};

struct DamageReport {
  bool damaged = false;  // a normal open refuses the store
  std::string damage;    // why, in RocksDB's words (file, bytes) when damaged
  // What the log holds reading around the damaged records (an upper bound of
  // what was acknowledged) and what recovery up to the damage keeps.
  Census readable, kept;
  // RepairStore only: the audit (EventStore::Verify) of the repaired store.
  std::vector<Problem> problems;
};

// Looks at the store at `path` without changing anything. NotFound when there
// is no store; the error of the look when it cannot be read at all.
Result<DamageReport> InspectDamage(const std::string& path);

// Recovers a damaged store up to its last intact WAL record before the damage
// (RocksDB point-in-time recovery), which drops that record and every later
// one, then opens it as a node would and audits it. A store that is not
// damaged is left alone. Busy when a node holds the dir.
Result<DamageReport> RepairStore(const std::string& path);

}  // namespace keel::store
