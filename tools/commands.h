#pragma once

// The CLI's command table. Each command adds itself next to its code: its
// subcommand, its options and the function that runs it once parsed; main
// parses the command line and runs the one chosen.

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tools/cli.h"

namespace keel::cli {

class Commands {
 public:
  explicit Commands(CLI::App& app);

  // What a command takes besides --data: --json, and --token (a live node's).
  struct Takes {
    bool json = true;
    bool token = false;
  };
  // A subcommand `name`; `run` is called if it is the one chosen.
  CLI::App* Add(const std::string& name, const std::string& help, std::function<int()> run,
                Takes takes);
  // A subcommand `name`; `run` is called with its name if it is chosen (one
  // function behind several commands, as the controls are).
  CLI::App* Add(const std::string& name, const std::string& help,
                std::function<int(const std::string&)> run, Takes takes);

  // A subcommand `name` of the command group `parent` (keel schedule create):
  // as Add, one level down.
  CLI::App* Add(CLI::App* parent, const std::string& name, const std::string& help,
                std::function<int()> run, Takes takes);
  // A group of subcommands (`keel schedule ...`): one of them must be given.
  CLI::App* Group(const std::string& name, const std::string& help);

  // The flags every command shares, filled in by the parse.
  Common& common() { return common_; }
  CLI::App& app() { return app_; }

  // Counts, seqs and seconds are never negative: call once every command is
  // added (CLI11 would wrap "-1" into 2^64-1).
  void RefuseNegativeNumbers();
  // Runs the parsed command; its exit code.
  int RunChosen();

 private:
  CLI::App& app_;
  Common common_;
  std::vector<std::pair<CLI::App*, std::function<int()>>> commands_;
};

// run, wait, serve and the controls (control_commands.cc).
void AddProcessCommands(Commands& commands);
// show, events, tail, ls, replay, verify, export, diff (read_commands.cc).
void AddReadCommands(Commands& commands);
// repair (repair_command.cc).
void AddRepairCommand(Commands& commands);
// schedule create|ls|show|pause|resume|delete|trigger (schedule_commands.cc).
void AddScheduleCommands(Commands& commands);
// fork (fork_command.cc).
void AddForkCommand(Commands& commands);
// queue ls|show (queue_commands.cc).
void AddQueueCommands(Commands& commands);

}  // namespace keel::cli
