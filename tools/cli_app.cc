// The nearest command to a mistyped one, and completion scripts, both read
// from the CLI11 command table so that they never fall behind it.

#include "tools/cli_app.h"

#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <vector>

#include "keel/version.h"
#include "store/format.h"
#include "tools/cli.h"

namespace keel::cli {
namespace {

// Words people type for a keel command from other tools.
const std::map<std::string, std::string> kSynonyms = {
    {"list", "ls"},     {"ps", "ls"},         {"status", "show"}, {"get", "show"},
    {"describe", "show"}, {"inspect", "show"}, {"log", "events"},  {"logs", "events"},
    {"history", "events"}, {"start", "run"},   {"execute", "run"}, {"exec", "run"},
    {"stop", "cancel"}, {"terminate", "cancel"}, {"kill", "cancel"}, {"continue", "resume"},
    {"unpause", "resume"}, {"server", "serve"}, {"daemon", "serve"}, {"check", "verify"},
    {"send", "signal"},
};

// Edits (insert, delete, replace, swap two neighbours) from `a` to `b`.
size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::vector<const CLI::App*> Commands(const CLI::App& app) {
  std::vector<const CLI::App*> out;
  for (const CLI::App* cmd : app.get_subcommands([](const CLI::App*) { return true; })) {
    out.push_back(cmd);
  }
  return out;
}

// The long option names of a command, e.g. "--data --json".
std::string OptionWords(const CLI::App& cmd) {
  std::string out = "--help";
  for (const CLI::Option* opt : cmd.get_options()) {
    for (const std::string& name : opt->get_lnames()) {
      if (name != "help") out += " --" + name;
    }
    for (const std::string& name : opt->get_snames()) {
      if (name != "h") out += " -" + name;
    }
  }
  return out;
}

std::string FirstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

std::string BashScript(const CLI::App& app) {
  std::ostringstream out;
  std::string names;
  for (const CLI::App* cmd : Commands(app)) names += (names.empty() ? "" : " ") + cmd->get_name();
  out << "# bash completion for keel. Load it with: source <(keel completion bash)\n"
      << "_keel() {\n"
      << "  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}\n"
      << "  if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
      << "    COMPREPLY=($(compgen -W \"" << names << " --help --version\" -- \"$cur\"))\n"
      << "    return\n"
      << "  fi\n"
      << "  if [ \"$prev\" = --status ]; then\n"
      << "    COMPREPLY=($(compgen -W \"" << ProcessStatusNames(" ") << "\" -- \"$cur\"))\n"
      << "    return\n"
      << "  fi\n"
      << "  local opts=\n"
      << "  case \"${COMP_WORDS[1]}\" in\n";
  for (const CLI::App* cmd : Commands(app)) {
    out << "    " << cmd->get_name() << ") opts=\"" << OptionWords(*cmd) << "\" ;;\n";
  }
  out << "  esac\n"
      << "  case \"$cur\" in\n"
      << "    -*) COMPREPLY=($(compgen -W \"$opts\" -- \"$cur\")) ;;\n"
      << "    *) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n"
      << "  esac\n"
      << "}\n"
      << "complete -o filenames -F _keel keel\n";
  return out.str();
}

// `text` with ' and : escaped for a zsh _describe entry in single quotes.
std::string ZshQuote(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\'') {
      out += "'\\''";
    } else if (ch == ':') {
      out += "\\:";
    } else {
      out += ch;
    }
  }
  return out;
}

std::string ZshScript(const CLI::App& app) {
  std::ostringstream out;
  out << "#compdef keel\n"
      << "# zsh completion for keel. Load it with: source <(keel completion zsh),\n"
      << "# or save it as _keel in a directory of $fpath.\n"
      << "_keel() {\n"
      << "  local -a commands opts\n"
      << "  commands=(\n";
  for (const CLI::App* cmd : Commands(app)) {
    out << "    '" << cmd->get_name() << ":" << ZshQuote(FirstLine(cmd->get_description()))
        << "'\n";
  }
  out << "  )\n"
      << "  if (( CURRENT == 2 )); then\n"
      << "    _describe 'command' commands\n"
      << "    return\n"
      << "  fi\n"
      << "  if [[ ${words[CURRENT-1]} == --status ]]; then\n"
      << "    compadd -- " << ProcessStatusNames(" ") << "\n"
      << "    return\n"
      << "  fi\n"
      << "  case ${words[2]} in\n";
  for (const CLI::App* cmd : Commands(app)) {
    out << "    " << cmd->get_name() << ") opts=(" << OptionWords(*cmd) << ") ;;\n";
  }
  out << "  esac\n"
      << "  if [[ $PREFIX == -* ]]; then\n"
      << "    compadd -- $opts\n"
      << "  else\n"
      << "    _files\n"
      << "  fi\n"
      << "}\n"
      << "if [[ $funcstack[1] == _keel ]]; then\n"
      << "  _keel \"$@\"\n"
      << "else\n"
      << "  compdef _keel keel\n"
      << "fi\n";
  return out.str();
}

}  // namespace

std::string NearestCommand(const CLI::App& app, const std::string& typed) {
  auto commands = Commands(app);
  auto known = [&](const std::string& name) {
    return std::any_of(commands.begin(), commands.end(),
                       [&](const CLI::App* cmd) { return cmd->get_name() == name; });
  };
  if (auto it = kSynonyms.find(typed); it != kSynonyms.end() && known(it->second)) {
    return it->second;
  }
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const CLI::App* cmd : commands) {
    const std::string& name = cmd->get_name();
    size_t d = EditDistance(typed, name);
    // A prefix of a command ("app" for approve) is as near as a typo.
    if (typed.size() >= 2 && name.compare(0, typed.size(), typed) == 0) d = 1;
    if (d < best_distance) {
      best_distance = d;
      best = name;
    }
  }
  // Within reach: about a third of the word may be wrong.
  size_t reach = std::max<size_t>(1, std::min(typed.size(), best.size()) / 3);
  return best_distance <= reach ? best : "";
}

int ParseFailed(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  int code = app.exit(e);
  if (code == 0) return kExitOk;
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) != "--json") continue;
    Json error = {{"error", {{"code", "invalid"}, {"message", e.what()}}}};
    std::cout << error.dump(-1, ' ', false, Json::error_handler_t::replace) << std::endl;
    break;
  }
  return kExitBadInput;
}

int RefuseUnknownCommand(const CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return -1;
  std::string typed = argv[1];
  for (const CLI::App* cmd : Commands(app)) {
    if (cmd->check_name(typed)) return -1;
  }
  std::string message = "unknown command '" + typed + "'";
  std::string nearest = NearestCommand(app, typed);
  message += nearest.empty() ? "; `keel --help` lists the commands"
                             : "; did you mean `" + nearest + "`?";
  bool json = false;
  for (int i = 2; i < argc; ++i) json = json || std::string(argv[i]) == "--json";
  SetJsonErrors(json);
  return Fail(Status::InvalidArgument(message));
}

void AddInfoCommands(CLI::App& app) {
  app.set_version_flag("--version", std::string("keel ") + kVersion);
  auto* version = app.add_subcommand("version", "keel's version and the store format it writes");
  auto json = std::make_shared<bool>(false);
  version->add_flag("--json", *json, "JSON output");
  version->callback([json] {
    if (*json) {
      std::cout << Json{{"version", kVersion}, {"store_format", store::format::kFormatVersion}}.dump()
                << std::endl;
    } else {
      std::cout << "keel " << kVersion << " (store format " << store::format::kFormatVersion
                << ")" << std::endl;
    }
    throw CLI::Success();
  });
  auto* completion = app.add_subcommand(
      "completion", "a shell completion script: source <(keel completion bash)");
  auto shell = std::make_shared<std::string>();
  completion->add_option("SHELL", *shell, "bash or zsh")
      ->required()
      ->check(CLI::IsMember({"bash", "zsh"}));
  completion->callback([&app, shell] {
    auto script = CompletionScript(app, *shell);
    if (script.ok()) std::cout << *script << std::flush;
    throw CLI::Success();
  });
}

Result<std::string> CompletionScript(const CLI::App& app, const std::string& shell) {
  if (shell == "bash") return BashScript(app);
  if (shell == "zsh") return ZshScript(app);
  return Status::InvalidArgument("no completion for shell '" + shell + "' (bash or zsh)");
}

}  // namespace keel::cli
