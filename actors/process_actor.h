#pragma once

// The process actor: single writer of one process's event stream. It folds
// its events with the same fold as projections, asks the Interpreter what to
// persist next, and acts (starts task attempts, arms timers, notifies the
// node) only after that append is durable. CAF types stay in actors/ and the
// runtime's internals.

#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/typed_actor.hpp>
#include <functional>
#include <memory>
#include <string>

#include "actors/host.h"
#include "actors/interpreter.h"
#include "events/state.h"

namespace keel::actors {

// A control's answer: the process's state once the control took effect (OK),
// or why it was refused. Typed: the JSON is made by whoever shows it.
struct ControlReply {
  std::string message;                                  // the refusal's, when not OK
  std::shared_ptr<const events::ProcessState> state;  // when OK
};

}  // namespace keel::actors

// Controls, their replies and activity results are local messages between
// the node and its actors, never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keel::actors::Control)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keel::actors::ControlReply)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(keel::ActivityResult)

namespace keel::actors {

using wake_atom = caf::atom_constant<caf::atom("wake")>;            // re-plan (after a control)
using persisted_atom = caf::atom_constant<caf::atom("persisted")>;  // the append is durable
using result_atom = caf::atom_constant<caf::atom("result")>;        // an attempt ended
using control_atom = caf::atom_constant<caf::atom("control")>;      // a control or a due timer
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;      // an attempt ran out of time

// result_atom: an attempt's outcome: task, attempt, result. timeout_atom: the deadline of an
// attempt (task, attempt) has passed. control_atom: replies once the control's events are durable
// and the process has acted on them (it rests, or waits for running tasks), or at once when it is
// refused or changes nothing, with a keel Status code (0 = OK) and a ControlReply (the state, or
// the error message); or with kAskAgain from the actor of a new process whose creation failed (the id was
// taken): it was never that process, so the control goes to the process's own actor.
inline constexpr int32_t kAskAgain = -1;
using process_actor =
    caf::typed_actor<caf::reacts_to<wake_atom>, caf::reacts_to<persisted_atom>,
                     caf::reacts_to<result_atom, std::string, uint32_t, ActivityResult>,
                     caf::reacts_to<timeout_atom, std::string, uint32_t>,
                     caf::replies_to<control_atom, Control>::with<int32_t, ControlReply>>;

// Spawns the actor of a process whose folded state is `state`, of which the
// last `unsnapshotted` events came after its latest snapshot; it starts
// working at once. The host is told (Passivated) when the actor stops.
process_actor SpawnProcess(caf::actor_system& system, Host& host, events::ProcessState state,
                           std::shared_ptr<const Workflow> workflow, uint64_t unsnapshotted);


// Spawns the actor of a new process `id` (see Creation).
process_actor SpawnNewProcess(caf::actor_system& system, Host& host, const std::string& id,
                              std::shared_ptr<const Workflow> workflow, Creation creation);

}  // namespace keel::actors
