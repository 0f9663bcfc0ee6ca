#pragma once

// The process actor: single writer of one process's event stream. It folds
// its events with the same fold as projections, asks the Interpreter what to
// persist next, and acts (launches task actors, arms timers, notifies the
// node) only after that append is durable. CAF types stay in actors/ and the
// runtime's internals.

#include <memory>
#include <string>

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/typed_actor.hpp>

#include "actors/host.h"
#include "events/state.h"

namespace keel::actors {

using wake_atom = caf::atom_constant<caf::atom("wake")>;        // re-plan (after a control)
using persisted_atom = caf::atom_constant<caf::atom("persisted")>;  // the append is durable
using result_atom = caf::atom_constant<caf::atom("result")>;    // an attempt ended
using timer_atom = caf::atom_constant<caf::atom("timer")>;      // a durable timer is due
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;    // stop an execution
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;  // an attempt ran out of time

// An attempt's outcome: task, attempt, ok, output JSON, error, retryable.
using process_actor = caf::typed_actor<
    caf::reacts_to<wake_atom>, caf::reacts_to<persisted_atom>,
    caf::reacts_to<result_atom, std::string, uint32_t, bool, std::string, std::string, bool>,
    caf::reacts_to<timer_atom, std::string>>;

// One execution of one task attempt.
using task_actor = caf::typed_actor<
    caf::reacts_to<result_atom, std::string, uint32_t, bool, std::string, std::string, bool>,
    caf::reacts_to<timeout_atom>, caf::reacts_to<cancel_atom>>;

// Spawns the actor of a process whose folded state is `state`; it starts
// working at once. The host is told (Passivated) when the actor stops.
process_actor SpawnProcess(caf::actor_system& system, Host& host, events::ProcessState state,
                           std::shared_ptr<const Workflow> workflow);

// True when the process needs no actor: ended, paused, or waiting with no
// armed timer.
bool AtRest(const events::ProcessState& state);

}  // namespace keel::actors
