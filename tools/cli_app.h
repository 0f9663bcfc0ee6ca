#pragma once

// Help built from the command table of tools/keel.cc: the nearest command to
// a mistyped one, and shell completion scripts that name every command and
// its options.

#include <CLI/CLI.hpp>
#include <string>

#include "keel/status.h"

namespace keel::cli {

// The command of `app` nearest to `typed` (a known synonym such as
// list -> ls, else the smallest edit distance within reach); "" when none is
// near enough to be a likely typo.
std::string NearestCommand(const CLI::App& app, const std::string& typed);

// When argv[1] is a word that names no command of `app`, says so on stderr
// (with the nearest command) and returns the exit code 2; -1 otherwise.
int RefuseUnknownCommand(const CLI::App& app, int argc, char** argv);

// The exit code for a command line CLI11 refused (0 for --help and
// --version, else 2), after CLI11 printed why; with --json among the
// arguments the reason also goes to stdout as a JSON error object.
int ParseFailed(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv);

// Adds `--version`, and the commands `version` (also --json) and
// `completion bash|zsh`, which print and end the parse with CLI::Success.
// Call it after every other command is added: completion names them all.
void AddInfoCommands(CLI::App& app);

// A completion script for `shell` ("bash" or "zsh"); InvalidArgument for
// another shell.
Result<std::string> CompletionScript(const CLI::App& app, const std::string& shell);

}  // namespace keel::cli
