#include "tools/commands.h"

#include <cmath>
#include <cstdlib>

namespace keel::cli {

Commands::Commands(CLI::App& app) : app_(app) {
  common_.data = DefaultDataDir();
  common_.token = DefaultToken();
}

CLI::App* Commands::Add(const std::string& name, const std::string& help, std::function<int()> run,
                        Takes takes) {
  return Add(&app_, name, help, std::move(run), takes);
}

CLI::App* Commands::Group(const std::string& name, const std::string& help) {
  CLI::App* group = app_.add_subcommand(name, help);
  group->require_subcommand(1);
  return group;
}

CLI::App* Commands::Add(CLI::App* parent, const std::string& name, const std::string& help,
                        std::function<int()> run, Takes takes) {
  CLI::App* cmd = parent->add_subcommand(name, help);
  commands_.emplace_back(cmd, std::move(run));
  cmd->add_option("--data", common_.data, "data dir (default $KEEL_DATA, else ./.keel)");
  if (takes.json) cmd->add_flag("--json", common_.json, "JSON output");
  if (takes.token)
    cmd->add_option("--token", common_.token, "API token of a live node (default $KEEL_TOKEN)");
  return cmd;
}

CLI::App* Commands::Add(const std::string& name, const std::string& help,
                        std::function<int(const std::string&)> run, Takes takes) {
  return Add(
      name, help, [run = std::move(run), name] { return run(name); }, takes);
}

void Commands::RefuseNegativeNumbers() {
  const CLI::Validator non_negative(
      [](std::string& text) {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        bool ok = !text.empty() && end == text.c_str() + text.size() && v >= 0 && std::isfinite(v);
        return ok ? std::string() : "must be a number, 0 or more, not '" + text + "'";
      },
      "NUMBER >= 0");
  for (auto& [cmd, _] : commands_) {
    for (auto* opt : cmd->get_options()) {
      if (opt->get_type_name() == "TEXT") continue;  // fork's --from names a step
      for (const char* name : {"--limit", "--offset", "--from", "--to", "--timeout", "--max-body",
                               "--grace", "--tasks-limit", "--tasks-offset"}) {
        if (opt->check_name(name)) opt->check(non_negative);
      }
    }
  }
}

int Commands::RunChosen() {
  for (auto& [cmd, run] : commands_) {
    if (*cmd) return run();
  }
  return kExitBadInput;
}

}  // namespace keel::cli
