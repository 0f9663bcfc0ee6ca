#include "actors/policy.h"

#include <algorithm>
#include <optional>

namespace keel::actors {
namespace {

using Decision = PolicyRule::Decision;

// The text a rule's glob is matched against, or nullopt when the key names
// nothing in this task (then the rule does not match).
std::optional<std::string> Field(const std::string& key, const std::string& workflow,
                                 const Step& step, const Json& input) {
  if (key == "activity") return step.activity;
  if (key == "step") return step.id;
  if (key == "workflow") return workflow;
  constexpr std::string_view kWith = "with.";
  if (key.rfind(kWith, 0) != 0) return std::nullopt;
  const Json* at = &input;
  std::string_view path = std::string_view(key).substr(kWith.size());
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string part(path.substr(0, dot));
    if (!at->is_object() || !at->contains(part)) return std::nullopt;
    at = &(*at)[part];
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  return at->is_string() ? at->get<std::string>() : at->dump();
}

std::string DecisionName(Decision d) {
  switch (d) {
    case Decision::kAllow:
      return "allow";
    case Decision::kBlock:
      return "block";
    case Decision::kRequireApproval:
      return "require_approval";
  }
  return "?";
}

}  // namespace

bool GlobMatch(std::string_view pattern, std::string_view text) {
  // Iterative matcher with one backtrack point (the last `*`).
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p, ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

Gates::Gates(const Options& options)
    : exec_policy_(options.exec_policy), exec_allow_(options.exec_allow), rules_(options.policy) {}

GateDecision Gates::Check(const std::string& workflow, const Step& step, const Json& input) const {
  if (step.activity == "exec" && exec_policy_ != ExecPolicy::kFull) {
    std::string program;
    if (input.is_object() && input.contains("argv") && input["argv"].is_array() &&
        !input["argv"].empty()) {
      const Json& first = input["argv"][0];
      program = first.is_string() ? first.get<std::string>() : first.dump();
    }
    if (exec_policy_ == ExecPolicy::kDeny) {
      return {Decision::kBlock, "exec_policy", "exec is denied by the node's exec policy (deny)"};
    }
    if (std::find(exec_allow_.begin(), exec_allow_.end(), program) == exec_allow_.end()) {
      return {Decision::kBlock, "exec_policy",
              "exec of '" + program + "' is not in the node's exec allowlist"};
    }
  }
  for (const PolicyRule& rule : rules_) {
    bool all = std::all_of(rule.match.begin(), rule.match.end(), [&](const auto& entry) {
      auto value = Field(entry.first, workflow, step, input);
      return value && GlobMatch(entry.second, *value);
    });
    if (!all) continue;
    std::string reason;
    if (rule.decision != Decision::kAllow) {
      reason = "policy rule '" + rule.name + "' decided " + DecisionName(rule.decision) +
               " for step '" + step.id + "' (activity " + step.activity + ")";
    }
    return {rule.decision, rule.name, std::move(reason)};
  }
  return {};
}

}  // namespace keel::actors
