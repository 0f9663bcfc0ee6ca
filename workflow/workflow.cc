// Workflow definitions: YAML/JSON parsing (structure, with source lines),
// validation (shared by every way in), canonical JSON and its hash.

#include "keel/workflow.h"

#include <openssl/evp.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>

#include "base/time.h"
#include "workflow/expression.h"
#include "workflow/references.h"
#include "base/validate.h"

namespace keel {
namespace {

constexpr int kFormat = 1;  // version of the canonical JSON layout
constexpr int kMaxNesting = 64;
// Bounds of a workflow text: its size, and how many YAML values aliases may
// add to those it holds (an alias counts its whole target each time it is
// used, so a few anchors that refer to anchors cannot expand to gigabytes).
constexpr size_t kMaxWorkflowBytes = 32u << 20;
constexpr uint64_t kMaxAliasValues = 1'000'000;

// ---------------------------------------------------------------------------
// Names

bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool AllOf(std::string_view s, const std::function<bool(char)>& ok) {
  return std::all_of(s.begin(), s.end(), ok);
}

// Step ids and branch names: task and branch ids are built from them with
// '/' and '#', and expressions reach them as steps.<id>.
bool ValidStepId(std::string_view s) {
  return !s.empty() && s.size() <= 128 &&
         AllOf(s, [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_' || c == '-'; });
}
// Variables and inputs: Lua names, so `vars.x` and `inputs.x` reach them.
bool ValidVarName(std::string_view s) {
  return !s.empty() && s.size() <= 128 && !IsDigit(s[0]) &&
         AllOf(s, [](char c) { return IsAlpha(c) || IsDigit(c) || c == '_'; });
}
// Workflow and output names.
bool ValidName(std::string_view s) {
  return !s.empty() && s.size() <= 128 && s[0] != '.' && s[0] != '-' && AllOf(s, [](char c) {
    return IsAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '.';
  });
}
// Activity names: "echo", "payments.charge", "billing:refund".
bool ValidActivityName(std::string_view s) {
  return !s.empty() && s.size() <= 128 && (IsAlpha(s[0]) || s[0] == '_') && AllOf(s, [](char c) {
    return IsAlpha(c) || IsDigit(c) || c == '_' || c == '-' || c == '.' || c == ':';
  });
}

constexpr const char kStepIdRule[] = "letters, digits, '_' and '-'";
constexpr const char kVarRule[] = "a name of letters, digits and '_' not starting with a digit";

// ---------------------------------------------------------------------------
// Messages: "<source>:<line>: step '<id>': <what>"

struct Budget;

// Where a message points: the source, and the step (if any) being read.
struct Scope {
  const std::string* source;
  std::string step;  // empty outside steps
  int line = 0;      // the step's line, or the line of the thing at top level
  Budget* budget = nullptr;  // YAML reading only: the values left to read

  std::string Prefix(int at) const {
    std::string out = *source;
    if (line > 0)
      out += ":" + std::to_string(line);
    else if (at > 0)
      out += ":" + std::to_string(at);
    out += ": ";
    if (!step.empty()) out += "step '" + step + "': ";
    return out;
  }
  // An error at line `at` (0 = at the scope's line).
  Status Error(const std::string& what, int at = 0) const {
    std::string msg = Prefix(at) + what;
    if (line > 0 && at > 0 && at != line) msg += " (line " + std::to_string(at) + ")";
    return Status::InvalidArgument(msg);
  }
  Scope At(int l) const { return Scope{source, step, l, budget}; }
};

// The YAML values a document may still read (see kMaxAliasValues).
struct Budget {
  uint64_t limit;
  uint64_t left;

  explicit Budget(uint64_t values) : limit(values), left(values) {}

  // Counts `count` values read at line `at`.
  Status Take(const Scope& scope, int at, uint64_t count = 1) {
    if (left >= count) {
      left -= count;
      return Status::OK();
    }
    return scope.Error("the workflow expands to more than " + std::to_string(limit) +
                           " values: YAML aliases count their whole target each time they are used",
                       at);
  }
};

// ---------------------------------------------------------------------------
// YAML reading

int LineOf(const YAML::Node& n) { return n.Mark().is_null() ? 0 : n.Mark().line + 1; }

const char* TypeName(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return "nothing";
    case YAML::NodeType::Scalar:
      return "a scalar";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "undefined";
  }
}

bool IsQuoted(const YAML::Node& n) { return n.Tag() == "!" || n.Tag() == "tag:yaml.org,2002:str"; }

// Counts `n` against the document's budget (YAML reading only).
Status Count(const Scope& scope, const YAML::Node& n, uint64_t values = 1) {
  return scope.budget ? scope.budget->Take(scope, LineOf(n), values) : Status::OK();
}

// A plain YAML scalar as JSON, by YAML 1.2's core schema: null, booleans,
// decimal / 0x / 0o integers and floats; anything else is a string.
Result<Json> PlainScalar(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return Json(nullptr);
  if (s == "true" || s == "True" || s == "TRUE") return Json(true);
  if (s == "false" || s == "False" || s == "FALSE") return Json(false);
  const char* b = s.data();
  const char* e = s.data() + s.size();
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    uint64_t v = 0;
    auto [p, ec] = std::from_chars(b + 2, e, v, s[1] == 'x' ? 16 : 8);
    if (ec == std::errc() && p == e) {
      if (v <= static_cast<uint64_t>(INT64_MAX)) return Json(static_cast<int64_t>(v));
      return Json(v);
    }
    return Json(s);
  }
  // [-+]?[0-9]+
  size_t i = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  bool digits = i < s.size() && std::all_of(s.begin() + static_cast<long>(i), s.end(), IsDigit);
  if (digits) {
    const char* start = s[0] == '+' ? b + 1 : b;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(start, e, v);
    if (ec == std::errc() && p == e) return Json(v);
    uint64_t u = 0;
    auto [p2, ec2] = std::from_chars(start, e, u);
    if (ec2 == std::errc() && p2 == e) return Json(u);
  }
  // [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?
  {
    size_t j = i, int_digits = 0, frac_digits = 0;
    while (j < s.size() && IsDigit(s[j])) ++j, ++int_digits;
    if (j < s.size() && s[j] == '.') {
      ++j;
      while (j < s.size() && IsDigit(s[j])) ++j, ++frac_digits;
    }
    bool ok = int_digits + frac_digits > 0;
    if (ok && j < s.size() && (s[j] == 'e' || s[j] == 'E')) {
      ++j;
      if (j < s.size() && (s[j] == '+' || s[j] == '-')) ++j;
      size_t exp_digits = 0;
      while (j < s.size() && IsDigit(s[j])) ++j, ++exp_digits;
      ok = exp_digits > 0;
    }
    if (ok && j == s.size()) {
      double d = std::strtod(std::string(s[0] == '+' ? s.substr(1) : s).c_str(), nullptr);
      if (std::isfinite(d)) return Json(d);
      return Status::InvalidArgument("number '" + s + "' is out of range");
    }
  }
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
  if (lower == ".inf" || lower == "+.inf" || lower == "-.inf" || lower == ".nan") {
    return Status::InvalidArgument("'" + s + "' cannot be represented in JSON");
  }
  return Json(s);
}

// One entry of a YAML map.
struct Entry {
  std::string key;
  int line;
  YAML::Node value;
};

// The entries of a map in file order; refuses non-scalar and duplicate keys.
Result<std::vector<Entry>> Entries(const YAML::Node& map, const Scope& scope,
                                   const std::string& what) {
  if (!map.IsMap()) {
    return scope.Error(what + " must be a map, not " + TypeName(map), LineOf(map));
  }
  KEEL_RETURN_IF_ERROR(Count(scope, map, 1 + map.size()));
  std::vector<Entry> out;
  std::set<std::string> seen;
  for (auto it = map.begin(); it != map.end(); ++it) {
    const YAML::Node& k = it->first;
    if (!k.IsScalar()) return scope.Error("a key of " + what + " is not a scalar", LineOf(k));
    if (!seen.insert(k.Scalar()).second) {
      return scope.Error("duplicate key '" + k.Scalar() + "' in " + what, LineOf(k));
    }
    out.push_back({k.Scalar(), LineOf(k), it->second});
  }
  return out;
}

// Any YAML value as JSON (`with`, `vars`, defaults).
Result<Json> ToJsonValue(const YAML::Node& n, const Scope& scope, const std::string& what,
                         int depth = 0) {
  if (depth > kMaxNesting) return scope.Error(what + " is nested too deeply", LineOf(n));
  if (!n.IsMap()) KEEL_RETURN_IF_ERROR(Count(scope, n));  // a map counts in Entries
  switch (n.Type()) {
    case YAML::NodeType::Null:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      if (IsQuoted(n)) return Json(n.Scalar());
      auto v = PlainScalar(n.Scalar());
      if (!v.ok()) return scope.Error(what + ": " + v.status().message(), LineOf(n));
      return v;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (size_t i = 0; i < n.size(); ++i) {
        auto v = ToJsonValue(n[i], scope, what + "[" + std::to_string(i) + "]", depth + 1);
        if (!v.ok()) return v;
        out.push_back(std::move(*v));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      auto entries = Entries(n, scope, what);
      if (!entries.ok()) return entries.status();
      Json out = Json::object();
      for (const auto& e : *entries) {
        auto v = ToJsonValue(e.value, scope, what + "." + e.key, depth + 1);
        if (!v.ok()) return v;
        out[e.key] = std::move(*v);
      }
      return out;
    }
    default:
      return scope.Error(what + " has no value", LineOf(n));
  }
}

// Reads typed scalars of an entry. `what` names the key in messages.
class Reader {
 public:
  explicit Reader(const Scope& scope) : scope_(scope) {}

  Status String(const YAML::Node& n, const std::string& what, std::string& out) const {
    if (!n.IsScalar())
      return scope_.Error("'" + what + "' must be a string, not " + TypeName(n), LineOf(n));
    out = n.Scalar();
    return Status::OK();
  }
  // A string that must not be empty.
  Status Text(const YAML::Node& n, const std::string& what, std::string& out) const {
    KEEL_RETURN_IF_ERROR(String(n, what, out));
    if (out.empty()) return scope_.Error("'" + what + "' is empty", LineOf(n));
    return Status::OK();
  }
  Status Integer(const YAML::Node& n, const std::string& what, int64_t min, int64_t max,
                 int64_t& out) const {
    auto v = n.IsScalar() && !IsQuoted(n) ? PlainScalar(n.Scalar()) : Result<Json>(Json());
    if (!v.ok() || !v->is_number_integer()) {
      return scope_.Error("'" + what + "' must be an integer", LineOf(n));
    }
    int64_t i = v->get<int64_t>();
    if (i < min || i > max) {
      return scope_.Error("'" + what + "' must be between " + std::to_string(min) + " and " +
                              std::to_string(max) + ", not " + std::to_string(i),
                          LineOf(n));
    }
    out = i;
    return Status::OK();
  }
  Status Number(const YAML::Node& n, const std::string& what, double& out) const {
    auto v = n.IsScalar() && !IsQuoted(n) ? PlainScalar(n.Scalar()) : Result<Json>(Json());
    if (!v.ok() || !v->is_number())
      return scope_.Error("'" + what + "' must be a number", LineOf(n));
    out = v->get<double>();
    return Status::OK();
  }
  Status Bool(const YAML::Node& n, const std::string& what, bool& out) const {
    auto v = n.IsScalar() && !IsQuoted(n) ? PlainScalar(n.Scalar()) : Result<Json>(Json());
    if (!v.ok() || !v->is_boolean()) {
      return scope_.Error("'" + what + "' must be true or false", LineOf(n));
    }
    out = v->get<bool>();
    return Status::OK();
  }
  Status Duration(const YAML::Node& n, const std::string& what, int64_t& out) const {
    if (!n.IsScalar()) {
      return scope_.Error("'" + what + "' must be a duration such as 5s, not " + TypeName(n),
                          LineOf(n));
    }
    auto d = ParseDurationMs(n.Scalar());
    if (!d.ok()) return scope_.Error(what + ": " + d.status().message(), LineOf(n));
    out = *d;
    return Status::OK();
  }
  // An expression: a string, or a scalar taken as written (`set: {n: 0}`).
  Status Expression(const YAML::Node& n, const std::string& what, std::string& out) const {
    if (!n.IsScalar()) {
      return scope_.Error("'" + what + "' must be an expression (a string), not " + TypeName(n),
                          LineOf(n));
    }
    out = n.Scalar();
    return Status::OK();
  }

 private:
  const Scope& scope_;
};

// Source lines of what is not a step, for the validator's messages.
struct SourceLines {
  int name = 0;
  int steps = 0;
  std::map<std::string, int> inputs;
  std::map<std::string, int> outputs;
};

const char* const kKindKeys[] = {"activity",    "approval", "parallel", "for_each",
                                 "wait_signal", "sleep",    "pause",    "set"};
const StepKind kKindOf[] = {StepKind::kActivity, StepKind::kApproval,   StepKind::kParallel,
                            StepKind::kForEach,  StepKind::kWaitSignal, StepKind::kSleep,
                            StepKind::kPause,    StepKind::kSet};
const char* const kCommonKeys[] = {"id",    "when", "save_as", "on_error", "goto",       "timeout",
                                   "retry", "with", "join",    "steps",    "concurrency"};

// Keys that belong to one kind only (besides the kind's own key).
std::optional<StepKind> OwnerKind(std::string_view key) {
  if (key == "with" || key == "timeout" || key == "retry") return StepKind::kActivity;
  if (key == "join") return StepKind::kParallel;
  if (key == "steps" || key == "concurrency") return StepKind::kForEach;
  return std::nullopt;
}

class YamlParser {
 public:
  YamlParser(const std::string& source, uint64_t budget) : source_(source), budget_(budget) {}

  Status Parse(const YAML::Node& root, Workflow& wf, SourceLines& lines) {
    Scope top{&source_, "", 0, &budget_};
    if (!root.IsMap()) {
      return top.Error(
          "a workflow must be a map with 'name' and 'steps', not " + std::string(TypeName(root)),
          std::max(LineOf(root), 1));
    }
    auto entries = Entries(root, top, "the workflow");
    if (!entries.ok()) return entries.status();
    bool has_name = false, has_steps = false;
    for (const auto& e : *entries) {
      Scope at = top.At(e.line);
      Reader r(at);
      if (e.key == "name") {
        KEEL_RETURN_IF_ERROR(r.Text(e.value, "name", wf.name));
        lines.name = e.line;
        has_name = true;
      } else if (e.key == "inputs") {
        KEEL_RETURN_IF_ERROR(ParseInputs(e, wf, lines));
      } else if (e.key == "vars") {
        if (e.value.IsNull()) continue;
        if (!e.value.IsMap()) return at.Error("'vars' must be a map of variable -> value");
        auto v = ToJsonValue(e.value, at, "vars");
        if (!v.ok()) return v.status();
        wf.vars = std::move(*v);
      } else if (e.key == "steps") {
        lines.steps = e.line;
        has_steps = true;
        KEEL_RETURN_IF_ERROR(ParseSteps(e.value, at, "steps", wf.steps, 0));
      } else if (e.key == "outputs") {
        if (e.value.IsNull()) continue;
        auto outs = Entries(e.value, at, "'outputs'");
        if (!outs.ok()) return outs.status();
        for (const auto& o : *outs) {
          std::string expr;
          KEEL_RETURN_IF_ERROR(
              Reader(top.At(o.line)).Expression(o.value, "outputs." + o.key, expr));
          wf.outputs.emplace_back(o.key, std::move(expr));
          lines.outputs[o.key] = o.line;
        }
      } else {
        return at.Error("unknown key '" + e.key +
                        "' (a workflow has name, inputs, vars, steps, outputs)");
      }
    }
    if (!has_name) return top.Error("the workflow has no 'name'", std::max(LineOf(root), 1));
    if (!has_steps) return top.Error("the workflow has no 'steps'", std::max(LineOf(root), 1));
    return Status::OK();
  }

 private:
  Status ParseInputs(const Entry& e, Workflow& wf, SourceLines& lines) {
    Scope at{&source_, "", e.line, &budget_};
    if (e.value.IsNull()) return Status::OK();
    auto inputs = Entries(e.value, at, "'inputs'");
    if (!inputs.ok()) return inputs.status();
    for (const auto& in : *inputs) {
      Scope is{&source_, "", in.line, &budget_};
      lines.inputs[in.key] = in.line;
      InputSpec spec;
      if (!in.value.IsNull()) {
        auto fields = Entries(in.value, is, "input '" + in.key + "'");
        if (!fields.ok()) return fields.status();
        for (const auto& f : *fields) {
          Scope fs = is.At(f.line);
          if (f.key == "required") {
            KEEL_RETURN_IF_ERROR(
                Reader(fs).Bool(f.value, "inputs." + in.key + ".required", spec.required));
          } else if (f.key == "default") {
            auto v = ToJsonValue(f.value, fs, "inputs." + in.key + ".default");
            if (!v.ok()) return v.status();
            spec.default_value = std::move(*v);
          } else {
            return fs.Error("input '" + in.key + "': unknown key '" + f.key +
                            "' (an input has required, default)");
          }
        }
      }
      wf.inputs[in.key] = std::move(spec);
    }
    return Status::OK();
  }

  Status ParseSteps(const YAML::Node& n, const Scope& at, const std::string& what,
                    std::vector<Step>& out, int depth) {
    if (depth > kMaxNesting) return at.Error("steps are nested too deeply", LineOf(n));
    if (!n.IsSequence()) {
      return at.Error("'" + what + "' must be a list of steps, not " + TypeName(n), LineOf(n));
    }
    KEEL_RETURN_IF_ERROR(Count(at, n, 1 + n.size()));
    out.reserve(out.size() + n.size());  // a Step is large: no moves while growing
    for (size_t i = 0; i < n.size(); ++i) {
      Step step;
      KEEL_RETURN_IF_ERROR(ParseStep(n[i], at, step, depth));
      out.push_back(std::move(step));
    }
    return Status::OK();
  }

  Status ParseStep(const YAML::Node& n, const Scope& parent, Step& step, int depth) {
    int line = LineOf(n);
    Scope unnamed{&source_, "", line > 0 ? line : parent.line, &budget_};
    if (!n.IsMap()) return unnamed.Error(std::string("a step must be a map, not ") + TypeName(n));
    // The id names the step in messages, even those about its other keys.
    Scope named = unnamed;
    for (auto it = n.begin(); it != n.end(); ++it) {
      if (it->first.IsScalar() && it->first.Scalar() == "id" && it->second.IsScalar()) {
        named.step = it->second.Scalar();
        break;
      }
    }
    auto entries = Entries(n, named, "a step");
    if (!entries.ok()) return entries.status();
    step.line = unnamed.line;
    const Entry* id = nullptr;
    for (const auto& e : *entries) {
      if (e.key == "id") id = &e;
    }
    if (id == nullptr) return unnamed.Error("a step has no 'id'");
    KEEL_RETURN_IF_ERROR(Reader(unnamed.At(id->line)).Text(id->value, "id", step.id));
    Scope st{&source_, step.id, unnamed.line, &budget_};
    Reader r(st);

    // Unknown keys first, then the kind.
    std::vector<const Entry*> kinds;
    for (const auto& e : *entries) {
      auto kind = std::find_if(std::begin(kKindKeys), std::end(kKindKeys),
                               [&](const char* k) { return e.key == k; });
      if (kind != std::end(kKindKeys)) {
        kinds.push_back(&e);
        step.kind = kKindOf[kind - std::begin(kKindKeys)];
        continue;
      }
      if (std::none_of(std::begin(kCommonKeys), std::end(kCommonKeys),
                       [&](const char* k) { return e.key == k; })) {
        return st.Error("unknown key '" + e.key + "'", e.line);
      }
    }
    if (kinds.empty()) {
      return st.Error(
          "has no kind: give exactly one of activity, approval, parallel, for_each, wait_signal, "
          "sleep, pause, set");
    }
    if (kinds.size() > 1) {
      return st.Error("has more than one kind: '" + kinds[0]->key + "' and '" + kinds[1]->key + "'",
                      kinds[1]->line);
    }
    const char* kind_name = StepKindName(step.kind);

    for (const auto& e : *entries) {
      const YAML::Node& v = e.value;
      if (auto owner = OwnerKind(e.key); owner && *owner != step.kind) {
        return st.Error("'" + e.key + "' does not apply to a " + kind_name + " step", e.line);
      }
      if (e.key == "id") {
        continue;
      } else if (e.key == "activity") {
        KEEL_RETURN_IF_ERROR(r.Text(v, "activity", step.activity));
      } else if (e.key == "with") {
        if (v.IsNull()) continue;
        if (!v.IsMap())
          return st.Error(std::string("'with' must be a map, not ") + TypeName(v), e.line);
        auto j = ToJsonValue(v, st, "with");
        if (!j.ok()) return j.status();
        step.with = std::move(*j);
      } else if (e.key == "save_as") {
        KEEL_RETURN_IF_ERROR(r.Text(v, "save_as", step.save_as));
      } else if (e.key == "on_error") {
        KEEL_RETURN_IF_ERROR(r.Text(v, "on_error", step.on_error));
      } else if (e.key == "when") {
        KEEL_RETURN_IF_ERROR(r.Expression(v, "when", step.when));
      } else if (e.key == "timeout") {
        KEEL_RETURN_IF_ERROR(r.Duration(v, "timeout", step.timeout_ms));
      } else if (e.key == "retry") {
        KEEL_RETURN_IF_ERROR(ParseRetry(v, st, step.retry));
      } else if (e.key == "goto") {
        KEEL_RETURN_IF_ERROR(ParseGoto(v, st, step));
      } else if (e.key == "approval") {
        KEEL_RETURN_IF_ERROR(ParseApproval(v, st, step));
      } else if (e.key == "parallel") {
        KEEL_RETURN_IF_ERROR(ParseParallel(v, st, step, depth));
      } else if (e.key == "join") {
        KEEL_RETURN_IF_ERROR(ParseJoin(v, st, step.join));
      } else if (e.key == "for_each") {
        KEEL_RETURN_IF_ERROR(r.Expression(v, "for_each", step.for_each));
      } else if (e.key == "concurrency") {
        int64_t c = 0;
        KEEL_RETURN_IF_ERROR(r.Integer(v, "concurrency", 0, UINT32_MAX, c));
        step.concurrency = static_cast<uint32_t>(c);
      } else if (e.key == "steps") {
        KEEL_RETURN_IF_ERROR(ParseSteps(v, st, "steps", step.steps, depth + 1));
      } else if (e.key == "wait_signal") {
        KEEL_RETURN_IF_ERROR(ParseWaitSignal(v, st, step));
      } else if (e.key == "sleep") {
        KEEL_RETURN_IF_ERROR(ParseSleep(v, st, step));
      } else if (e.key == "pause") {
        if (!v.IsNull()) KEEL_RETURN_IF_ERROR(r.String(v, "pause", step.pause_reason));
      } else if (e.key == "set") {
        auto vars = Entries(v, st, "'set'");
        if (!vars.ok()) return vars.status();
        for (const auto& a : *vars) {
          std::string expr;
          KEEL_RETURN_IF_ERROR(r.Expression(a.value, "set." + a.key, expr));
          step.set.emplace_back(a.key, std::move(expr));
        }
      }
    }
    return Status::OK();
  }

  Status ParseRetry(const YAML::Node& n, const Scope& st, RetryPolicy& retry) {
    auto fields = Entries(n, st, "'retry'");
    if (!fields.ok()) return fields.status();
    Reader r(st);
    for (const auto& f : *fields) {
      if (f.key == "max_attempts") {
        int64_t v = 0;
        KEEL_RETURN_IF_ERROR(r.Integer(f.value, "retry.max_attempts", 1, UINT32_MAX, v));
        retry.max_attempts = static_cast<uint32_t>(v);
      } else if (f.key == "backoff") {
        KEEL_RETURN_IF_ERROR(r.Duration(f.value, "retry.backoff", retry.backoff_ms));
      } else if (f.key == "multiplier") {
        KEEL_RETURN_IF_ERROR(r.Number(f.value, "retry.multiplier", retry.multiplier));
      } else if (f.key == "max_backoff") {
        KEEL_RETURN_IF_ERROR(r.Duration(f.value, "retry.max_backoff", retry.max_backoff_ms));
      } else {
        return st.Error("retry: unknown key '" + f.key +
                            "' (retry has max_attempts, backoff, multiplier, max_backoff)",
                        f.line);
      }
    }
    return Status::OK();
  }

  Status ParseGoto(const YAML::Node& n, const Scope& st, Step& step) {
    Reader r(st);
    GotoRule rule;
    if (n.IsScalar()) {
      KEEL_RETURN_IF_ERROR(r.Text(n, "goto", rule.step));
      step.go_to = std::move(rule);
      return Status::OK();
    }
    auto fields = Entries(n, st, "'goto'");
    if (!fields.ok()) return fields.status();
    bool has_step = false;
    for (const auto& f : *fields) {
      if (f.key == "step") {
        KEEL_RETURN_IF_ERROR(r.Text(f.value, "goto.step", rule.step));
        has_step = true;
      } else if (f.key == "when") {
        KEEL_RETURN_IF_ERROR(r.Expression(f.value, "goto.when", rule.when));
      } else {
        return st.Error("goto: unknown key '" + f.key + "' (goto has step, when)", f.line);
      }
    }
    if (!has_step) return st.Error("goto has no 'step'", LineOf(n));
    step.go_to = std::move(rule);
    return Status::OK();
  }

  Status ParseApproval(const YAML::Node& n, const Scope& st, Step& step) {
    Reader r(st);
    if (n.IsNull()) return Status::OK();
    if (n.IsScalar()) return r.String(n, "approval", step.prompt);
    auto fields = Entries(n, st, "'approval'");
    if (!fields.ok()) return fields.status();
    for (const auto& f : *fields) {
      if (f.key == "prompt") {
        KEEL_RETURN_IF_ERROR(r.String(f.value, "approval.prompt", step.prompt));
      } else if (f.key == "expires") {
        KEEL_RETURN_IF_ERROR(r.Duration(f.value, "approval.expires", step.expires_ms));
      } else {
        return st.Error("approval: unknown key '" + f.key + "' (approval has prompt, expires)",
                        f.line);
      }
    }
    return Status::OK();
  }

  Status ParseParallel(const YAML::Node& n, const Scope& st, Step& step, int depth) {
    if (n.IsSequence()) {  // a list of step lists: branches "0", "1", ...
      for (size_t i = 0; i < n.size(); ++i) {
        std::vector<Step> steps;
        std::string name = std::to_string(i);
        KEEL_RETURN_IF_ERROR(ParseSteps(n[i], st, "parallel[" + name + "]", steps, depth + 1));
        step.branches.emplace_back(name, std::move(steps));
      }
      return Status::OK();
    }
    if (!n.IsMap()) {
      return st.Error(
          std::string("'parallel' must be a map of branch name -> steps, not ") + TypeName(n),
          LineOf(n));
    }
    auto branches = Entries(n, st, "'parallel'");
    if (!branches.ok()) return branches.status();
    for (const auto& b : *branches) {
      std::vector<Step> steps;
      KEEL_RETURN_IF_ERROR(
          ParseSteps(b.value, st.At(st.line), "parallel." + b.key, steps, depth + 1));
      step.branches.emplace_back(b.key, std::move(steps));
    }
    return Status::OK();
  }

  Status ParseJoin(const YAML::Node& n, const Scope& st, Join& join) {
    const std::string kKinds = "join is all, first, any or {at_least: N}";
    if (n.IsScalar()) {
      const std::string& s = n.Scalar();
      if (s == "all")
        join.kind = Join::kAll;
      else if (s == "first")
        join.kind = Join::kFirst;
      else if (s == "any")
        join.kind = Join::kAny;
      else
        return st.Error("unknown join '" + s + "' (" + kKinds + ")", LineOf(n));
      return Status::OK();
    }
    auto fields = Entries(n, st, "'join'");
    if (!fields.ok()) return fields.status();
    bool has_n = false;
    for (const auto& f : *fields) {
      if (f.key != "at_least")
        return st.Error("join: unknown key '" + f.key + "' (" + kKinds + ")", f.line);
      int64_t v = 0;
      KEEL_RETURN_IF_ERROR(Reader(st).Integer(f.value, "join.at_least", 1, UINT32_MAX, v));
      join.kind = Join::kAtLeast;
      join.at_least = static_cast<uint32_t>(v);
      has_n = true;
    }
    if (!has_n) return st.Error("join has no 'at_least'", LineOf(n));
    return Status::OK();
  }

  Status ParseWaitSignal(const YAML::Node& n, const Scope& st, Step& step) {
    Reader r(st);
    if (n.IsScalar()) return r.Text(n, "wait_signal", step.topic);
    auto fields = Entries(n, st, "'wait_signal'");
    if (!fields.ok()) return fields.status();
    for (const auto& f : *fields) {
      if (f.key == "topic") {
        KEEL_RETURN_IF_ERROR(r.Text(f.value, "wait_signal.topic", step.topic));
      } else if (f.key == "timeout") {
        KEEL_RETURN_IF_ERROR(r.Duration(f.value, "wait_signal.timeout", step.wait_timeout_ms));
      } else if (f.key == "on_timeout") {
        KEEL_RETURN_IF_ERROR(r.Text(f.value, "wait_signal.on_timeout", step.on_timeout));
      } else {
        return st.Error(
            "wait_signal: unknown key '" + f.key + "' (wait_signal has topic, timeout, on_timeout)",
            f.line);
      }
    }
    return Status::OK();
  }

  Status ParseSleep(const YAML::Node& n, const Scope& st, Step& step) {
    Reader r(st);
    if (n.IsScalar()) return r.Duration(n, "sleep", step.sleep_ms);
    auto fields = Entries(n, st, "'sleep'");
    if (!fields.ok()) return fields.status();
    bool has_until = false;
    for (const auto& f : *fields) {
      if (f.key != "until") {
        return st.Error("sleep: unknown key '" + f.key + "' (sleep is a duration or {until: TIME})",
                        f.line);
      }
      KEEL_RETURN_IF_ERROR(r.Text(f.value, "sleep.until", step.sleep_until));
      has_until = true;
    }
    if (!has_until) return st.Error("sleep has no 'until'", LineOf(n));
    return Status::OK();
  }

  const std::string& source_;
  Budget budget_;
};

}  // namespace

// Each step's line and position: its index in its step list, preceded, for a
// nested list, by the position of the step that holds it and the list's
// number there (0: the for_each body, k + 1: branch k).
struct StepIndex {
  struct Where {
    int line = 0;
    std::vector<uint32_t> path;
  };
  std::map<std::string, Where, std::less<>> steps;

  // The step at the position recorded for `id`, when it still has that id.
  const Step* Find(const std::vector<Step>& top, std::string_view id) const {
    auto it = steps.find(id);
    if (it == steps.end()) return nullptr;
    const std::vector<Step>* list = &top;
    const auto& path = it->second.path;
    const Step* step = nullptr;
    for (size_t i = 0; i < path.size(); i += 2) {
      if (path[i] >= list->size()) return nullptr;
      step = &(*list)[path[i]];
      if (i + 1 == path.size()) break;
      uint32_t sub = path[i + 1];
      if (sub == 0) {
        list = &step->steps;
      } else if (sub - 1 < step->branches.size()) {
        list = &step->branches[sub - 1].second;
      } else {
        return nullptr;
      }
    }
    return step != nullptr && step->id == id ? step : nullptr;
  }
};

namespace {

// ---------------------------------------------------------------------------
// Validation, shared by every way in.

class Validator {
 public:
  Validator(const Workflow& wf, const SourceLines* lines)
      : wf_(wf), lines_(lines), index_(std::make_shared<StepIndex>()), ids_(index_->steps) {}

  // Where each step sits, once Run() succeeded.
  std::shared_ptr<const StepIndex> Index() const { return index_; }

  Status Run() {
    Scope top{&wf_.source, "", 0};
    int name_line = lines_ ? lines_->name : 0;
    if (wf_.name.empty()) return top.Error("the workflow has no 'name'");
    if (!ValidName(wf_.name)) {
      return top.At(name_line).Error("workflow name '" + wf_.name +
                                     "' must be letters, digits, '_', '-' and '.'");
    }
    for (const auto& [name, spec] : wf_.inputs) {
      Scope at = top.At(LineIn(lines_ ? &lines_->inputs : nullptr, name));
      if (!ValidVarName(name)) return at.Error("input '" + name + "' must be " + kVarRule);
      if (spec.required && spec.default_value) {
        return at.Error("input '" + name + "' is required and has a default: give one of the two");
      }
    }
    if (!wf_.vars.is_object()) return top.Error("'vars' must be a map of variable -> value");
    if (wf_.steps.empty()) {
      return top.At(lines_ ? lines_->steps : 0).Error("the workflow has no steps");
    }
    std::vector<uint32_t> path;
    KEEL_RETURN_IF_ERROR(CollectIds(wf_.steps, path));
    KEEL_RETURN_IF_ERROR(List(wf_.steps));
    std::set<std::string> outputs;
    for (const auto& [name, expr] : wf_.outputs) {
      Scope at = top.At(LineIn(lines_ ? &lines_->outputs : nullptr, name));
      if (!ValidName(name))
        return at.Error("output name '" + name + "' must be letters, digits, '_', '-' and '.'");
      if (!outputs.insert(name).second) return at.Error("duplicate output '" + name + "'");
      Status s = ExpressionEngine::IsTemplate(expr) ? ExpressionEngine::CheckTemplate(expr)
                                                    : ExpressionEngine::Check(expr);
      if (!s.ok()) return at.Error("output '" + name + "': " + s.message());
    }
    return Status::OK();
  }

 private:
  static int LineIn(const std::map<std::string, int>* lines, const std::string& key) {
    if (lines == nullptr) return 0;
    auto it = lines->find(key);
    return it == lines->end() ? 0 : it->second;
  }

  // `path`: the position of the list `steps` (see StepIndex).
  Status CollectIds(const std::vector<Step>& steps, std::vector<uint32_t>& path) {
    for (uint32_t i = 0; i < steps.size(); ++i) {
      const Step& s = steps[i];
      Scope st{&wf_.source, s.id, s.line};
      if (s.id.empty()) return Scope{&wf_.source, "", s.line}.Error("a step has no 'id'");
      if (!ValidStepId(s.id)) return st.Error(std::string("a step id must be ") + kStepIdRule);
      path.push_back(i);
      auto [it, fresh] = ids_.try_emplace(s.id, StepIndex::Where{s.line, path});
      if (!fresh) {
        int first = it->second.line;
        return st.Error("duplicate step id" +
                        (first > 0 ? " (first at line " + std::to_string(first) + ")"
                                   : std::string()));
      }
      for (uint32_t k = 0; k < s.branches.size(); ++k) {
        path.push_back(k + 1);
        KEEL_RETURN_IF_ERROR(CollectIds(s.branches[k].second, path));
        path.pop_back();
      }
      path.push_back(0);
      KEEL_RETURN_IF_ERROR(CollectIds(s.steps, path));
      path.pop_back();
      path.pop_back();
    }
    return Status::OK();
  }

  // One step list: targets of goto / on_error / on_timeout must be in it.
  Status List(const std::vector<Step>& steps) {
    std::set<std::string> here;
    for (const auto& s : steps) here.insert(s.id);
    for (const auto& s : steps) KEEL_RETURN_IF_ERROR(One(s, here));
    return Status::OK();
  }

  Status Target(const Scope& st, const std::string& what, const std::string& target,
                const std::set<std::string>& here) {
    if (here.count(target)) return Status::OK();
    if (ids_.find(target) != ids_.end()) {
      return st.Error(what + " '" + target + "' is a step of another branch: " + what +
                      " can only name a step of the same step list");
    }
    return st.Error(what + " '" + target + "' is not a step");
  }

  static Status CheckExpr(const Scope& st, const std::string& what, const std::string& expr) {
    Status s = ExpressionEngine::Check(expr);
    return s.ok() ? s : st.Error(what + ": " + s.message());
  }
  static Status CheckTemplate(const Scope& st, const std::string& what, const std::string& text) {
    Status s = ExpressionEngine::CheckTemplate(text);
    return s.ok() ? s : st.Error(what + ": " + s.message());
  }
  // Every string of a JSON value (the activity input) as a template.
  static Status CheckTemplates(const Scope& st, const std::string& path, const Json& v) {
    if (v.is_string()) return CheckTemplate(st, path, v.get_ref<const std::string&>());
    if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i) {
        KEEL_RETURN_IF_ERROR(CheckTemplates(st, path + "[" + std::to_string(i) + "]", v[i]));
      }
    } else if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it) {
        KEEL_RETURN_IF_ERROR(CheckTemplates(st, path + "." + it.key(), *it));
      }
    }
    return Status::OK();
  }

  Status One(const Step& s, const std::set<std::string>& here) {
    Scope st{&wf_.source, s.id, s.line};
    const std::string kind = StepKindName(s.kind);
    auto not_here = [&](const std::string& key) {
      return st.Error("'" + key + "' does not apply to a " + kind + " step");
    };
    // Fields of other kinds (possible from C++ or JSON, not from a file).
    if (s.kind != StepKind::kActivity) {
      if (!s.activity.empty()) return not_here("activity");
      if (!s.with.is_object() || !s.with.empty()) return not_here("with");
      if (s.timeout_ms != 0) return not_here("timeout");
      if (s.retry.max_attempts != 1 || s.retry.backoff_ms != 0 || s.retry.multiplier != 1.0 ||
          s.retry.max_backoff_ms != 0) {
        return not_here("retry");
      }
    }
    if (s.kind != StepKind::kParallel && (!s.branches.empty() || s.join.kind != Join::kAll)) {
      return not_here(s.branches.empty() ? "join" : "parallel");
    }
    if (s.kind != StepKind::kForEach &&
        (!s.steps.empty() || s.concurrency != 0 || !s.for_each.empty())) {
      return not_here(!s.for_each.empty() ? "for_each" : s.steps.empty() ? "concurrency" : "steps");
    }
    if (s.kind != StepKind::kApproval && (!s.prompt.empty() || s.expires_ms != 0))
      return not_here("approval");
    if (s.kind != StepKind::kWaitSignal &&
        (!s.topic.empty() || s.wait_timeout_ms != 0 || !s.on_timeout.empty())) {
      return not_here("wait_signal");
    }
    if (s.kind != StepKind::kSleep && (s.sleep_ms != 0 || !s.sleep_until.empty()))
      return not_here("sleep");
    if (s.kind != StepKind::kPause && !s.pause_reason.empty()) return not_here("pause");
    if (s.kind != StepKind::kSet && !s.set.empty()) return not_here("set");

    // Common keys.
    if (!s.when.empty()) KEEL_RETURN_IF_ERROR(CheckExpr(st, "when", s.when));
    if (!s.save_as.empty() && !ValidVarName(s.save_as)) {
      return st.Error("save_as '" + s.save_as + "' must be " + kVarRule);
    }
    if (!s.on_error.empty()) KEEL_RETURN_IF_ERROR(Target(st, "on_error", s.on_error, here));
    if (s.go_to) {
      if (s.go_to->step.empty()) return st.Error("goto has no 'step'");
      KEEL_RETURN_IF_ERROR(Target(st, "goto", s.go_to->step, here));
      if (!s.go_to->when.empty()) KEEL_RETURN_IF_ERROR(CheckExpr(st, "goto.when", s.go_to->when));
    }
    if (s.timeout_ms < 0) return st.Error("timeout is negative");
    if (s.retry.max_attempts < 1) return st.Error("retry.max_attempts must be at least 1");
    if (s.retry.backoff_ms < 0 || s.retry.max_backoff_ms < 0)
      return st.Error("retry: a backoff is negative");
    if (!(s.retry.multiplier >= 1.0) || !std::isfinite(s.retry.multiplier)) {
      return st.Error("retry.multiplier must be a number >= 1");
    }

    switch (s.kind) {
      case StepKind::kActivity:
        if (s.activity.empty()) return st.Error("'activity' is empty");
        if (!ValidActivityName(s.activity)) {
          return st.Error(
              "activity name '" + s.activity +
              "' must be letters, digits, '_', '-', '.' and ':' starting with a letter");
        }
        if (!s.with.is_object()) return st.Error("'with' must be a map");
        return CheckTemplates(st, "with", s.with);
      case StepKind::kApproval:
        if (s.expires_ms < 0) return st.Error("approval.expires is negative");
        return CheckTemplate(st, "approval.prompt", s.prompt);
      case StepKind::kParallel: {
        if (s.branches.empty()) return st.Error("'parallel' has no branches");
        std::set<std::string> names;
        for (const auto& [name, steps] : s.branches) {
          if (!ValidStepId(name)) {
            return st.Error("branch name '" + name + "' must be " + kStepIdRule);
          }
          if (!names.insert(name).second) return st.Error("duplicate branch '" + name + "'");
          if (steps.empty()) return st.Error("branch '" + name + "' has no steps");
          KEEL_RETURN_IF_ERROR(List(steps));
        }
        if (s.join.kind == Join::kAtLeast &&
            (s.join.at_least < 1 || s.join.at_least > s.branches.size())) {
          return st.Error("join at_least " + std::to_string(s.join.at_least) +
                          " needs between 1 and " + std::to_string(s.branches.size()) +
                          " (the number of branches)");
        }
        if (s.join.kind != Join::kAtLeast && s.join.at_least != 0) {
          return st.Error("join at_least is set but the join is not at_least");
        }
        return Status::OK();
      }
      case StepKind::kForEach:
        if (s.for_each.empty()) return st.Error("'for_each' is empty");
        KEEL_RETURN_IF_ERROR(CheckExpr(st, "for_each", s.for_each));
        if (s.steps.empty()) return st.Error("for_each has no 'steps'");
        return List(s.steps);
      case StepKind::kWaitSignal:
        if (s.topic.empty()) return st.Error("wait_signal has no 'topic'");
        KEEL_RETURN_IF_ERROR(CheckTemplate(st, "wait_signal.topic", s.topic));
        if (s.wait_timeout_ms < 0) return st.Error("wait_signal.timeout is negative");
        if (!s.on_timeout.empty()) {
          if (s.wait_timeout_ms == 0) {
            return st.Error("wait_signal.on_timeout is set but there is no timeout");
          }
          KEEL_RETURN_IF_ERROR(Target(st, "on_timeout", s.on_timeout, here));
        }
        return Status::OK();
      case StepKind::kSleep:
        if (s.sleep_ms < 0) return st.Error("sleep is negative");
        if (s.sleep_ms != 0 && !s.sleep_until.empty()) {
          return st.Error("sleep has both a duration and 'until'");
        }
        if (s.sleep_until.empty()) return Status::OK();
        if (ExpressionEngine::IsTemplate(s.sleep_until)) {
          return CheckTemplate(st, "sleep.until", s.sleep_until);
        } else {
          auto t = ParseTimeNs(s.sleep_until);
          return t.ok() ? Status::OK() : st.Error("sleep.until: " + t.status().message());
        }
      case StepKind::kPause:
        return CheckTemplate(st, "pause", s.pause_reason);
      case StepKind::kSet: {
        if (s.set.empty()) return st.Error("'set' assigns nothing");
        std::set<std::string> vars;
        for (const auto& [var, expr] : s.set) {
          if (!ValidVarName(var))
            return st.Error("set: variable '" + var + "' must be " + kVarRule);
          if (!vars.insert(var).second) return st.Error("set: variable '" + var + "' is set twice");
          KEEL_RETURN_IF_ERROR(CheckExpr(st, "set." + var, expr));
        }
        return Status::OK();
      }
    }
    return Status::OK();
  }

  const Workflow& wf_;
  const SourceLines* lines_;
  std::shared_ptr<StepIndex> index_;
  std::map<std::string, StepIndex::Where, std::less<>>& ids_;  // every step id -> where it is
};

// ---------------------------------------------------------------------------
// Canonical JSON

const char* JoinName(Join::Kind k) {
  switch (k) {
    case Join::kAll:
      return "all";
    case Join::kFirst:
      return "first";
    case Join::kAny:
      return "any";
    case Join::kAtLeast:
      return "at_least";
  }
  return "all";
}

Json Pairs(const std::vector<std::pair<std::string, std::string>>& pairs) {
  Json out = Json::array();
  for (const auto& [k, v] : pairs) out.push_back(Json::array({k, v}));
  return out;
}

Json StepsToJson(const std::vector<Step>& steps);

Json StepToJson(const Step& s) {
  Json j = Json::object();
  j["id"] = s.id;
  j["kind"] = StepKindName(s.kind);
  auto put_string = [&](const char* key, const std::string& v) {
    if (!v.empty()) j[key] = v;
  };
  auto put_int = [&](const char* key, int64_t v) {
    if (v != 0) j[key] = v;
  };
  put_string("activity", s.activity);
  if (!(s.with.is_object() && s.with.empty())) j["with"] = s.with;
  put_string("save_as", s.save_as);
  put_int("timeout_ms", s.timeout_ms);
  const RetryPolicy none;
  if (s.retry.max_attempts != none.max_attempts || s.retry.backoff_ms != none.backoff_ms ||
      s.retry.multiplier != none.multiplier || s.retry.max_backoff_ms != none.max_backoff_ms) {
    j["retry"] = {{"max_attempts", s.retry.max_attempts},
                  {"backoff_ms", s.retry.backoff_ms},
                  {"multiplier", s.retry.multiplier},
                  {"max_backoff_ms", s.retry.max_backoff_ms}};
  }
  put_string("on_error", s.on_error);
  put_string("when", s.when);
  put_string("prompt", s.prompt);
  put_int("expires_ms", s.expires_ms);
  if (!s.branches.empty()) {
    Json branches = Json::array();
    for (const auto& [name, steps] : s.branches) {
      branches.push_back({{"name", name}, {"steps", StepsToJson(steps)}});
    }
    j["branches"] = std::move(branches);
  }
  if (s.join.kind == Join::kAtLeast) {
    j["join"] = {{"at_least", s.join.at_least}};
  } else if (s.join.kind != Join::kAll) {
    j["join"] = JoinName(s.join.kind);
  }
  put_string("for_each", s.for_each);
  put_int("concurrency", s.concurrency);
  if (!s.steps.empty()) j["steps"] = StepsToJson(s.steps);
  put_string("topic", s.topic);
  put_int("wait_timeout_ms", s.wait_timeout_ms);
  put_string("on_timeout", s.on_timeout);
  put_int("sleep_ms", s.sleep_ms);
  put_string("sleep_until", s.sleep_until);
  put_string("pause_reason", s.pause_reason);
  if (!s.set.empty()) j["set"] = Pairs(s.set);
  if (s.go_to) {
    Json g = {{"step", s.go_to->step}};
    if (!s.go_to->when.empty()) g["when"] = s.go_to->when;
    j["goto"] = std::move(g);
  }
  return j;
}

Json StepsToJson(const std::vector<Step>& steps) {
  Json out = Json::array();
  for (const auto& s : steps) out.push_back(StepToJson(s));
  return out;
}

// Strict reading of canonical JSON: unknown keys and wrong types are refused.
class CanonicalReader {
 public:
  explicit CanonicalReader(const std::string& source) : source_(source) {}

  Status Workflow(const Json& j, keel::Workflow& wf) {
    Scope top{&source_, "", 0};
    if (!j.is_object()) return top.Error("a stored workflow must be a JSON object");
    KEEL_RETURN_IF_ERROR(Keys(top, j, {"format", "name", "inputs", "vars", "steps", "outputs"}));
    if (!j.contains("format") || !j["format"].is_number_integer()) {
      return top.Error("a stored workflow has no 'format'");
    }
    if (j["format"].get<int64_t>() != kFormat) {
      return Status::NotSupported(top.Prefix(0) + "stored workflow format " + j["format"].dump() +
                                  " is not supported (this keel reads format " +
                                  std::to_string(kFormat) + ")");
    }
    KEEL_RETURN_IF_ERROR(Str(top, j, "name", wf.name));
    if (j.contains("inputs")) {
      const Json& inputs = j["inputs"];
      if (!inputs.is_object()) return top.Error("'inputs' must be an object");
      for (auto it = inputs.begin(); it != inputs.end(); ++it) {
        if (!it->is_object()) return top.Error("input '" + it.key() + "' must be an object");
        KEEL_RETURN_IF_ERROR(Keys(top, *it, {"required", "default"}));
        InputSpec spec;
        if (it->contains("required")) {
          if (!(*it)["required"].is_boolean())
            return top.Error("input '" + it.key() + "': 'required' must be a boolean");
          spec.required = (*it)["required"].get<bool>();
        }
        if (it->contains("default")) spec.default_value = (*it)["default"];
        wf.inputs[it.key()] = std::move(spec);
      }
    }
    if (j.contains("vars")) wf.vars = j["vars"];
    if (!j.contains("steps")) return top.Error("the workflow has no 'steps'");
    KEEL_RETURN_IF_ERROR(Steps(top, j["steps"], wf.steps));
    if (j.contains("outputs"))
      KEEL_RETURN_IF_ERROR(PairList(top, j["outputs"], "outputs", wf.outputs));
    return Status::OK();
  }

 private:
  static Status Keys(const Scope& at, const Json& j, std::initializer_list<const char*> allowed) {
    for (auto it = j.begin(); it != j.end(); ++it) {
      if (std::none_of(allowed.begin(), allowed.end(),
                       [&](const char* k) { return it.key() == k; })) {
        return at.Error("unknown key '" + it.key() + "'");
      }
    }
    return Status::OK();
  }
  static Status Str(const Scope& at, const Json& j, const char* key, std::string& out,
                    bool required = true) {
    if (!j.contains(key))
      return required ? at.Error(std::string("'") + key + "' is missing") : Status::OK();
    if (!j[key].is_string()) return at.Error(std::string("'") + key + "' must be a string");
    out = j[key].get<std::string>();
    return Status::OK();
  }
  static Status Int(const Scope& at, const Json& j, const char* key, int64_t& out) {
    if (!j.contains(key)) return Status::OK();
    if (!j[key].is_number_integer())
      return at.Error(std::string("'") + key + "' must be an integer");
    out = j[key].get<int64_t>();
    return Status::OK();
  }
  static Status UInt32(const Scope& at, const Json& j, const char* key, uint32_t& out) {
    int64_t v = out;
    KEEL_RETURN_IF_ERROR(Int(at, j, key, v));
    if (v < 0 || v > UINT32_MAX) return at.Error(std::string("'") + key + "' is out of range");
    out = static_cast<uint32_t>(v);
    return Status::OK();
  }
  static Status PairList(const Scope& at, const Json& j, const char* what,
                         std::vector<std::pair<std::string, std::string>>& out) {
    if (!j.is_array())
      return at.Error(std::string("'") + what + "' must be a list of [name, text]");
    for (const auto& p : j) {
      if (!p.is_array() || p.size() != 2 || !p[0].is_string() || !p[1].is_string()) {
        return at.Error(std::string("'") + what + "' must be a list of [name, text]");
      }
      out.emplace_back(p[0].get<std::string>(), p[1].get<std::string>());
    }
    return Status::OK();
  }

  Status Steps(const Scope& at, const Json& j, std::vector<Step>& out) {
    if (!j.is_array()) return at.Error("'steps' must be a list");
    out.reserve(out.size() + j.size());
    for (const auto& sj : j) {
      Step s;
      KEEL_RETURN_IF_ERROR(One(at, sj, s));
      out.push_back(std::move(s));
    }
    return Status::OK();
  }

  Status One(const Scope& parent, const Json& j, Step& s) {
    if (!j.is_object()) return parent.Error("a step must be an object");
    KEEL_RETURN_IF_ERROR(Str(parent, j, "id", s.id));
    Scope st{&source_, s.id, 0};
    KEEL_RETURN_IF_ERROR(Keys(
        st, j,
        {"id",         "kind",     "activity",    "with",         "save_as",    "timeout_ms",
         "retry",      "on_error", "when",        "prompt",       "expires_ms", "branches",
         "join",       "for_each", "concurrency", "steps",        "topic",      "wait_timeout_ms",
         "on_timeout", "sleep_ms", "sleep_until", "pause_reason", "set",        "goto"}));
    std::string kind;
    KEEL_RETURN_IF_ERROR(Str(st, j, "kind", kind));
    bool known = false;
    for (size_t i = 0; i < std::size(kKindKeys); ++i) {
      if (kind == kKindKeys[i]) s.kind = kKindOf[i], known = true;
    }
    if (!known) return st.Error("unknown kind '" + kind + "'");
    KEEL_RETURN_IF_ERROR(Str(st, j, "activity", s.activity, false));
    if (j.contains("with")) s.with = j["with"];
    KEEL_RETURN_IF_ERROR(Str(st, j, "save_as", s.save_as, false));
    KEEL_RETURN_IF_ERROR(Int(st, j, "timeout_ms", s.timeout_ms));
    if (j.contains("retry")) {
      const Json& r = j["retry"];
      if (!r.is_object()) return st.Error("'retry' must be an object");
      KEEL_RETURN_IF_ERROR(
          Keys(st, r, {"max_attempts", "backoff_ms", "multiplier", "max_backoff_ms"}));
      KEEL_RETURN_IF_ERROR(UInt32(st, r, "max_attempts", s.retry.max_attempts));
      KEEL_RETURN_IF_ERROR(Int(st, r, "backoff_ms", s.retry.backoff_ms));
      KEEL_RETURN_IF_ERROR(Int(st, r, "max_backoff_ms", s.retry.max_backoff_ms));
      if (r.contains("multiplier")) {
        if (!r["multiplier"].is_number()) return st.Error("'retry.multiplier' must be a number");
        s.retry.multiplier = r["multiplier"].get<double>();
      }
    }
    KEEL_RETURN_IF_ERROR(Str(st, j, "on_error", s.on_error, false));
    KEEL_RETURN_IF_ERROR(Str(st, j, "when", s.when, false));
    KEEL_RETURN_IF_ERROR(Str(st, j, "prompt", s.prompt, false));
    KEEL_RETURN_IF_ERROR(Int(st, j, "expires_ms", s.expires_ms));
    if (j.contains("branches")) {
      if (!j["branches"].is_array()) return st.Error("'branches' must be a list");
      for (const auto& b : j["branches"]) {
        if (!b.is_object()) return st.Error("a branch must be an object");
        KEEL_RETURN_IF_ERROR(Keys(st, b, {"name", "steps"}));
        std::string name;
        KEEL_RETURN_IF_ERROR(Str(st, b, "name", name));
        std::vector<Step> steps;
        if (b.contains("steps")) KEEL_RETURN_IF_ERROR(Steps(st, b["steps"], steps));
        s.branches.emplace_back(std::move(name), std::move(steps));
      }
    }
    if (j.contains("join")) {
      const Json& jn = j["join"];
      if (jn == "all")
        s.join.kind = Join::kAll;
      else if (jn == "first")
        s.join.kind = Join::kFirst;
      else if (jn == "any")
        s.join.kind = Join::kAny;
      else if (jn.is_object() && jn.size() == 1 && jn.contains("at_least")) {
        s.join.kind = Join::kAtLeast;
        KEEL_RETURN_IF_ERROR(UInt32(st, jn, "at_least", s.join.at_least));
      } else {
        return st.Error("unknown join " + jn.dump());
      }
    }
    KEEL_RETURN_IF_ERROR(Str(st, j, "for_each", s.for_each, false));
    KEEL_RETURN_IF_ERROR(UInt32(st, j, "concurrency", s.concurrency));
    if (j.contains("steps")) KEEL_RETURN_IF_ERROR(Steps(st, j["steps"], s.steps));
    KEEL_RETURN_IF_ERROR(Str(st, j, "topic", s.topic, false));
    KEEL_RETURN_IF_ERROR(Int(st, j, "wait_timeout_ms", s.wait_timeout_ms));
    KEEL_RETURN_IF_ERROR(Str(st, j, "on_timeout", s.on_timeout, false));
    KEEL_RETURN_IF_ERROR(Int(st, j, "sleep_ms", s.sleep_ms));
    KEEL_RETURN_IF_ERROR(Str(st, j, "sleep_until", s.sleep_until, false));
    KEEL_RETURN_IF_ERROR(Str(st, j, "pause_reason", s.pause_reason, false));
    if (j.contains("set")) KEEL_RETURN_IF_ERROR(PairList(st, j["set"], "set", s.set));
    if (j.contains("goto")) {
      const Json& g = j["goto"];
      if (!g.is_object()) return st.Error("'goto' must be an object");
      KEEL_RETURN_IF_ERROR(Keys(st, g, {"step", "when"}));
      GotoRule rule;
      KEEL_RETURN_IF_ERROR(Str(st, g, "step", rule.step));
      KEEL_RETURN_IF_ERROR(Str(st, g, "when", rule.when, false));
      s.go_to = std::move(rule);
    }
    return Status::OK();
  }

  const std::string& source_;
};

const Step* Find(const std::vector<Step>& steps, std::string_view id) {
  for (const auto& s : steps) {
    if (s.id == id) return &s;
    for (const auto& [name, branch] : s.branches) {
      if (const Step* found = Find(branch, id)) return found;
    }
    if (const Step* found = Find(s.steps, id)) return found;
  }
  return nullptr;
}

}  // namespace

// ---------------------------------------------------------------------------
// Public functions

const char* StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kActivity:
      return "activity";
    case StepKind::kApproval:
      return "approval";
    case StepKind::kParallel:
      return "parallel";
    case StepKind::kForEach:
      return "for_each";
    case StepKind::kWaitSignal:
      return "wait_signal";
    case StepKind::kSleep:
      return "sleep";
    case StepKind::kPause:
      return "pause";
    case StepKind::kSet:
      return "set";
  }
  return "activity";
}

int64_t RetryPolicy::DelayMs(uint32_t failed_attempt) const {
  if (failed_attempt == 0 || backoff_ms <= 0) return 0;
  double delay = static_cast<double>(backoff_ms) *
                 std::pow(std::max(multiplier, 1.0), static_cast<double>(failed_attempt - 1));
  if (max_backoff_ms > 0) delay = std::min(delay, static_cast<double>(max_backoff_ms));
  constexpr double kLimit = 9.2e18;  // below INT64_MAX
  if (!(delay < kLimit)) return static_cast<int64_t>(kLimit);
  return std::llround(delay);
}

Json Workflow::ToJson() const {
  Json j = Json::object();
  j["format"] = kFormat;
  j["name"] = name;
  if (!inputs.empty()) {
    Json in = Json::object();
    for (const auto& [k, spec] : inputs) {
      Json s = Json::object();
      if (spec.required) s["required"] = true;
      if (spec.default_value) s["default"] = *spec.default_value;
      in[k] = std::move(s);
    }
    j["inputs"] = std::move(in);
  }
  if (!(vars.is_object() && vars.empty())) j["vars"] = vars;
  j["steps"] = StepsToJson(steps);
  if (!outputs.empty()) j["outputs"] = Pairs(outputs);
  return j;
}

std::string Workflow::Hash() const {
  std::string text = ToJson().dump();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), md, &len, EVP_sha256(), nullptr);
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned int i = 0; i < len; ++i) {
    hex += kHex[md[i] >> 4];
    hex += kHex[md[i] & 0xF];
  }
  return hex;
}

const Step* Workflow::FindStep(std::string_view id) const {
  if (step_index) {
    if (const Step* step = step_index->Find(steps, id)) return step;
  }
  return Find(steps, id);
}

Result<Workflow> Workflow::FromJson(const Json& canonical, std::string source) {
  Workflow wf;
  wf.source = std::move(source);
  KEEL_RETURN_IF_ERROR(CheckJsonUtf8(canonical, wf.source + ": the workflow"));
  KEEL_RETURN_IF_ERROR(CanonicalReader(wf.source).Workflow(canonical, wf));
  Validator validator(wf, nullptr);
  KEEL_RETURN_IF_ERROR(validator.Run());
  wf.step_index = validator.Index();
  return wf;
}

Result<Workflow> ParseWorkflow(std::string_view text, std::string source) {
  Workflow wf;
  wf.source = std::move(source);
  if (text.size() > kMaxWorkflowBytes) {
    return Status::InvalidArgument(wf.source + ": the workflow is " + std::to_string(text.size()) +
                                   " bytes, more than the " + std::to_string(kMaxWorkflowBytes) +
                                   " a workflow may have");
  }
  if (size_t bad = InvalidUtf8At(text); bad != std::string_view::npos) {
    size_t line = 1 + std::count(text.begin(), text.begin() + static_cast<long>(bad), '\n');
    return Status::InvalidArgument(wf.source + ":" + std::to_string(line) +
                                   ": the workflow is not valid UTF-8 (byte " +
                                   std::to_string(bad + 1) + " of the text)");
  }
  SourceLines lines;
  try {
    std::string doc(text);
    // JSON may be indented with tabs, which YAML does not allow; a tab is
    // never inside a JSON string, so spaces keep the meaning and the lines.
    size_t first = doc.find_first_not_of(" \t\r\n");
    if (first != std::string::npos && (doc[first] == '{' || doc[first] == '[')) {
      std::replace(doc.begin(), doc.end(), '\t', ' ');
    }
    std::vector<YAML::Node> docs = YAML::LoadAll(doc);
    if (docs.size() > 1) {
      return Status::InvalidArgument(wf.source + ":" + std::to_string(LineOf(docs[1])) +
                                     ": a workflow file holds one YAML document");
    }
    YAML::Node root = docs.empty() ? YAML::Node() : docs[0];
    KEEL_RETURN_IF_ERROR(YamlParser(wf.source, text.size() + kMaxAliasValues).Parse(root, wf, lines));
  } catch (const YAML::Exception& e) {
    std::string line = e.mark.is_null() ? "" : std::to_string(e.mark.line + 1) + ":";
    return Status::InvalidArgument(wf.source + ":" + line + " malformed YAML: " + e.msg);
  } catch (const std::exception& e) {
    return Status::InvalidArgument(wf.source + ": cannot read the workflow: " + e.what());
  }
  Validator validator(wf, &lines);
  KEEL_RETURN_IF_ERROR(validator.Run());
  wf.step_index = validator.Index();
  KEEL_RETURN_IF_ERROR(CheckReferences(wf, &lines.outputs));
  return wf;
}

Result<Workflow> LoadWorkflowFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return Status::IOError("cannot open workflow file '" + path + "': " + std::strerror(errno));
  }
  // Reads at most one byte past the limit, so that a huge file (or an endless
  // one, /dev/zero) is refused without being read whole.
  std::string text;
  char chunk[1 << 16];
  while (text.size() <= kMaxWorkflowBytes && in.read(chunk, sizeof chunk).gcount() > 0) {
    text.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) return Status::IOError("cannot read workflow file '" + path + "'");
  if (text.size() > kMaxWorkflowBytes) {
    return Status::InvalidArgument(path + ": the workflow is larger than the " +
                                   std::to_string(kMaxWorkflowBytes) + " bytes a workflow may have");
  }
  return ParseWorkflow(text, path);
}

Result<Json> ResolveInputs(const Workflow& wf, const Json& given) {
  if (!given.is_null() && !given.is_object()) {
    return Status::InvalidArgument("the inputs of workflow '" + wf.name +
                                   "' must be a JSON object");
  }
  Json out = Json::object();
  if (given.is_object()) {
    for (auto it = given.begin(); it != given.end(); ++it) {
      if (!wf.inputs.count(it.key())) {
        std::string declared;
        for (const auto& [k, spec] : wf.inputs) declared += (declared.empty() ? "" : ", ") + k;
        return Status::InvalidArgument(
            "input '" + it.key() + "' is not declared by workflow '" + wf.name +
            "' (declared: " + (declared.empty() ? "none" : declared) + ")");
      }
      if (!it->is_null()) out[it.key()] = *it;
    }
  }
  for (const auto& [name, spec] : wf.inputs) {
    if (out.contains(name)) continue;
    if (spec.required) {
      return Status::InvalidArgument("input '" + name + "' is required by workflow '" + wf.name +
                                     "'");
    }
    if (spec.default_value) out[name] = *spec.default_value;
  }
  return out;
}

}  // namespace keel
