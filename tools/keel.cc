// keel: the command-line tool (INTERFACE.md). Run and control commands go
// through the data dir's live node, or embed one; read commands open the store
// as a read-only secondary instance, so they never stop or block a live node.

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdlib>

#include "tools/cli.h"
#include "tools/cli_app.h"

int main(int argc, char** argv) {
  using namespace keel::cli;
  CLI::App app{"keel: a durable workflow runtime"};
  app.require_subcommand(1);
  Common common;
  common.data = DefaultDataDir();
  common.token = DefaultToken();
  auto add_common = [&](CLI::App* cmd, bool json = true) {
    cmd->add_option("--data", common.data, "data dir (default $KEEL_DATA, else ./.keel)");
    if (json) cmd->add_flag("--json", common.json, "JSON output");
  };
  auto add_token = [&](CLI::App* cmd) {
    cmd->add_option("--token", common.token, "API token of a live node (default $KEEL_TOKEN)");
  };

  RunArgs run;
  auto* run_cmd = app.add_subcommand("run", "run a workflow file until the process rests");
  run_cmd->add_option("FILE", run.file, "workflow file (YAML or JSON)")->required();
  run_cmd->add_option("--input", run.input, "an input k=v (v parsed as JSON if it is)");
  run_cmd->add_option("--inputs", run.inputs, "inputs as a JSON object, or @file");
  run_cmd->add_option("--id", run.id, "process id");
  run_cmd->add_option("--idempotency-key", run.idempotency_key, "start at most once per key");
  auto* detach =
      run_cmd->add_flag("--detach", run.detach, "return once the process is durably created");
  run_cmd
      ->add_flag("--until-done", run.until_done,
                 "wait through timers and retries until the process ends or needs a person")
      ->excludes(detach);
  run_cmd->add_option("--timeout", run.timeout_s, "seconds");
  add_common(run_cmd);
  add_token(run_cmd);

  std::string id;
  double timeout = 0;
  auto* wait_cmd =
      app.add_subcommand("wait", "wait until a process rests; exit code by its status");
  wait_cmd->add_option("ID", id)->required();
  wait_cmd->add_option("--timeout", timeout, "seconds");
  bool until_done = false;
  wait_cmd->add_flag("--until-done", until_done,
                     "wait through timers and retries until the process ends or needs a person");
  add_common(wait_cmd);
  add_token(wait_cmd);

  ServeArgs serve;
  auto* serve_cmd = app.add_subcommand("serve", "a node with the HTTP API, until SIGINT/SIGTERM");
  serve_cmd->add_option("--listen", serve.listen, "host:port (port 0: any free port)")
      ->capture_default_str();
  serve_cmd->add_option("--token", serve.token, "mutating requests need 'Authorization: Bearer T'");
  serve_cmd->add_flag("--insecure-no-token", serve.insecure_no_token,
                      "serve a non-loopback address without a token");
  serve_cmd->add_option("--exec-policy", serve.exec_policy,
                        "deny|allowlist|full (default deny; --exec-allow alone means allowlist)");
  serve_cmd->add_option("--exec-allow", serve.exec_allow, "a program exec may run (repeatable)");
  serve_cmd->add_option("--max-body", serve.max_body, "largest request body in bytes")
      ->capture_default_str();
  serve_cmd->add_option("--grace", serve.grace_s, "seconds to let running work rest on shutdown")
      ->capture_default_str();
  add_common(serve_cmd, /*json=*/false);

  auto* show_cmd =
      app.add_subcommand("show", "a process: branches, tasks, states, attempts, times");
  show_cmd->add_option("ID", id)->required();
  add_common(show_cmd);

  uint64_t from = 0;
  bool follow = false;
  auto* events_cmd = app.add_subcommand("events", "the log of a process (JSON lines with --json)");
  events_cmd->add_option("ID", id)->required();
  events_cmd->add_option("--from", from, "first seq (inclusive)");
  events_cmd->add_flag("--follow,-f", follow, "stream new events until the process ends");
  events_cmd->add_flag("--wide", common.wide, "event lines in full (default: cut to fit)");
  add_common(events_cmd);

  auto* tail_cmd = app.add_subcommand("tail", "the global log: the last 10 events unless --from");
  auto* tail_from = tail_cmd->add_option("--from", from, "first global seq (inclusive)");
  tail_cmd->add_flag("--follow,-f", follow, "stream new events until SIGINT/SIGTERM");
  tail_cmd->add_flag("--wide", common.wide, "event lines in full (default: cut to fit)");
  add_common(tail_cmd);

  LsArgs ls;
  auto* ls_cmd = app.add_subcommand("ls", "list processes, newest first");
  ls_cmd->add_option("--status", ls.status, "only this status (completed, waiting, ...)");
  ls_cmd->add_option("--workflow", ls.workflow, "only this workflow");
  ls_cmd->add_option("--since", ls.since, "created at or after: RFC 3339, or ago (90m, 2h, 1d)");
  ls_cmd->add_option("--until", ls.until, "created at or before: RFC 3339, or ago (90m, 2h, 1d)");
  ls_cmd->add_option("--idempotency-key", ls.idempotency_key, "the process started with this key");
  ls_cmd->add_option("--limit", ls.limit, "page size")->capture_default_str();
  ls_cmd->add_option("--offset", ls.offset, "processes to skip")->capture_default_str();
  add_common(ls_cmd);

  uint64_t to = 0;
  auto* replay_cmd = app.add_subcommand("replay", "the state rebuilt from the log up to a seq");
  replay_cmd->add_option("ID", id)->required();
  replay_cmd->add_option("--to", to, "last seq to apply (default: the whole log)");
  add_common(replay_cmd);

  auto* verify_cmd = app.add_subcommand(
      "verify",
      "audit chains, seq continuity, decoding, transitions, snapshots, log and index;\n"
      "exit 0 when clean, 5 on any problem");
  verify_cmd->add_option("ID", id, "one process (default: the whole store)");
  add_common(verify_cmd);

  auto* export_cmd = app.add_subcommand(
      "export",
      "a process's whole log as JSON lines: first its workflow definition, then each event");
  export_cmd->add_option("ID", id)->required();
  add_common(export_cmd, /*json=*/false);

  std::string other;
  auto* diff_cmd = app.add_subcommand(
      "diff",
      "first divergence of two processes' logs (type, entity, actor, data; ignoring\n"
      "stream ids, times, hashes, global seqs). Exit 0 identical, 1 diverged, 2 unknown id");
  diff_cmd->add_option("A", id)->required();
  diff_cmd->add_option("B", other)->required();
  add_common(diff_cmd);

  bool accept_loss = false;
  auto* repair_cmd = app.add_subcommand(
      "repair", "recover a store whose write-ahead log is damaged (every other command refuses\n"
                "it); shows what would be lost, drops it only with --accept-loss");
  repair_cmd->add_flag("--accept-loss", accept_loss,
                       "drop the damaged record and every later one");
  add_common(repair_cmd);

  ControlArgs control;
  std::vector<CLI::App*> control_cmds;
  for (const char* action : {"pause", "resume", "cancel", "retry"}) {
    auto* cmd = app.add_subcommand(action, std::string(action) + " a process");
    cmd->add_option("ID", control.id)->required();
    cmd->add_option("--reason", control.reason, "why (recorded)");
    cmd->add_option("--by", control.by, "who (recorded)");
    control_cmds.push_back(cmd);
  }
  for (const char* action : {"approve", "reject"}) {
    auto* cmd = app.add_subcommand(action, std::string(action) + " the approval a step waits for");
    cmd->add_option("ID", control.id)->required();
    cmd->add_option("STEP", control.target, "step id (or task id in a fan-out)")->required();
    cmd->add_option("--by", control.by, "who (recorded)");
    cmd->add_option("--reason", control.reason, "why (recorded)");
    control_cmds.push_back(cmd);
  }
  auto* signal_cmd = app.add_subcommand("signal", "deliver a signal to a process");
  signal_cmd->add_option("ID", control.id)->required();
  signal_cmd->add_option("TOPIC", control.target)->required();
  signal_cmd->add_option("--payload", control.payload, "JSON");
  control_cmds.push_back(signal_cmd);
  for (auto* cmd : control_cmds) {
    add_common(cmd);
    add_token(cmd);
  }

  // Counts, seqs and seconds are never negative: CLI11 would wrap "-1" into
  // 2^64-1 (a limit of everything, a seq past every event).
  const CLI::Validator non_negative(
      [](std::string& text) {
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        bool ok = !text.empty() && end == text.c_str() + text.size() && v >= 0 && std::isfinite(v);
        return ok ? std::string() : "must be a number, 0 or more, not '" + text + "'";
      },
      "NUMBER >= 0");
  for (auto* cmd : app.get_subcommands([](CLI::App*) { return true; })) {
    for (auto* opt : cmd->get_options()) {
      for (const char* name : {"--limit", "--offset", "--from", "--to", "--timeout", "--max-body",
                               "--grace"}) {
        if (opt->check_name(name)) opt->check(non_negative);
      }
    }
  }

  AddInfoCommands(app);
  if (int code = RefuseUnknownCommand(app, argc, argv); code >= 0) return code;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return ParseFailed(app, e, argc, argv);
  }
  SetJsonErrors(common.json);
  if (*run_cmd) return Run(common, run);
  if (*wait_cmd) return Wait(common, id, timeout, until_done);
  if (*serve_cmd) return Serve(common, serve);
  if (*show_cmd) return Show(common, id);
  if (*events_cmd) return Events(common, id, from, follow);
  if (*tail_cmd)
    return Tail(common, tail_from->count() ? std::optional(from) : std::nullopt, follow);
  if (*ls_cmd) return Ls(common, ls);
  if (*replay_cmd) return Replay(common, id, to);
  if (*verify_cmd) return Verify(common, id);
  if (*export_cmd) return Export(common, id);
  if (*diff_cmd) return Diff(common, id, other);
  if (*repair_cmd) return Repair(common, accept_loss);
  for (auto* cmd : control_cmds) {
    if (*cmd) {
      control.action = cmd->get_name();
      return Control(common, control);
    }
  }
  return kExitBadInput;
}
