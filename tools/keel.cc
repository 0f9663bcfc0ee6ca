// keel: the command-line tool (INTERFACE.md). Run and control commands go
// through the data dir's live node, or embed one; read commands open the store
// as a read-only secondary instance, so they never stop or block a live node.
// Each command adds itself (tools/commands.h) next to its code.

#include <CLI/CLI.hpp>

#include "tools/cli.h"
#include "tools/cli_app.h"
#include "tools/commands.h"

int main(int argc, char** argv) {
  using namespace keel::cli;
  CLI::App app{"keel: a durable workflow runtime"};
  app.require_subcommand(1);
  Commands commands(app);
  AddProcessCommands(commands);
  AddReadCommands(commands);
  AddRepairCommand(commands);
  AddScheduleCommands(commands);
  AddForkCommand(commands);
  AddQueueCommands(commands);
  commands.RefuseNegativeNumbers();
  AddInfoCommands(app);  // last: its completion scripts name every command

  if (int code = RefuseUnknownCommand(app, argc, argv); code >= 0) return code;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ParseFailed(app, e, argc, argv);
  }
  SetJsonErrors(commands.common().json);
  return commands.RunChosen();
}
