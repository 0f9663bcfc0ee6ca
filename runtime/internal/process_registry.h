#pragma once

// The live process actors of a node, and the actor system they run on: at
// most one actor per process, spawned from the log's state when a request or
// a timer needs one, forgotten when it stops (passivates). Every request
// reaches a process through here. The only part of the runtime that speaks
// CAF, which this header keeps to itself.

#include <cstdint>
#include <memory>
#include <string>

#include "actors/host.h"
#include "actors/interpreter.h"
#include "events/state.h"
#include "keel/status.h"
#include "store/event_store.h"

namespace keel::runtime {

class DefinitionCache;

class ProcessRegistry {
 public:
  // An actor system with `scheduler_threads` workers; the actors it spawns
  // are hosted by `host`, read `store` and run `definitions`, all of which
  // must outlive the registry.
  ProcessRegistry(unsigned scheduler_threads, actors::Host& host, store::EventStore& store,
                  DefinitionCache& definitions);
  // Stops every actor (Close) and the actor system.
  ~ProcessRegistry();

  // Spawns the actor of a process whose state was loaded (of which the last
  // `unsnapshotted` events came after its snapshot) unless one is live.
  Status Activate(events::ProcessState state, uint64_t unsnapshotted);

  // Spawns the actor of new process `id` of definition `hash`, which appends
  // its ProcessCreated (see actors::Creation). Refused when a process `id`
  // has a live actor, Aborted once the registry is closing.
  Status SpawnNew(const std::string& id, const std::string& hash, actors::Creation creation);

  // Hands `control` to the actor of process `id`, activating it, and
  // returns its reply: the snapshot once the control's events are durable.
  // An actor that stopped before it read the control (it passivated) is
  // replaced and asked again. NotFound for an unknown id, Aborted once the
  // registry is closing.
  Result<Json> Control(const std::string& id, const actors::Control& control);

  // The actor of `id` stopped.
  void Forget(const std::string& id);

  bool IsLive(const std::string& id);
  int64_t LiveCount();

  // Stops every live actor, refuses new ones (Aborted) and waits until all
  // have stopped. Idempotent.
  void Close();

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel::runtime
