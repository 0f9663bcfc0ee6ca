#pragma once

// The static check of what a workflow's templates and expressions read: a
// reference that is certain to find nothing (`inputs.q` for an input the
// workflow does not declare, `vars.nope` that no step can set) is refused
// when the file is loaded, not rendered as null at run time.

#include <map>
#include <string>

#include "keel/status.h"
#include "keel/workflow.h"

namespace keel {

// InvalidArgument naming the file, line and step (or output) of the first
// plain `inputs.NAME` / `vars.NAME` reference that cannot be satisfied.
// Inputs are the declared ones; variables are those of `vars:`, every
// `save_as`, every `set:` key, and `error` when a step has `on_error` or
// `on_timeout`. Only certain cases are refused: an expression that defines
// functions or locals, or reads `inputs[...]`, is left to run time.
// `output_lines` gives the source line of each output (may be null).
// Run on workflows loaded from text, never on stored definitions.
Status CheckReferences(const Workflow& wf, const std::map<std::string, int>* output_lines);

}  // namespace keel
