// CheckReferences: a conservative scan of templates and expressions for
// `inputs.NAME` and `vars.NAME` that no run can satisfy.

#include "workflow/references.h"

#include <optional>
#include <set>
#include <string_view>
#include <vector>

#include "workflow/expression.h"

namespace keel {
namespace {

struct Reference {
  std::string root;  // "inputs" or "vars"
  std::string name;
};

bool IdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IdentChar(char c) { return IdentStart(c) || (c >= '0' && c <= '9'); }

// The length of a Lua long bracket opening at `i` (`[[`, `[==[`), or 0;
// `level` gets its number of `=`.
size_t LongBracket(std::string_view s, size_t i, size_t& level) {
  if (i >= s.size() || s[i] != '[') return 0;
  size_t j = i + 1;
  while (j < s.size() && s[j] == '=') ++j;
  if (j >= s.size() || s[j] != '[') return 0;
  level = j - i - 1;
  return j - i + 1;
}

// The index after the long bracket closing `level` from `i` on (or the end).
size_t SkipLong(std::string_view s, size_t i, size_t level) {
  std::string close = "]" + std::string(level, '=') + "]";
  size_t end = s.find(close, i);
  return end == std::string_view::npos ? s.size() : end + close.size();
}

// The index after the quoted string opening at `i`.
size_t SkipQuoted(std::string_view s, size_t i) {
  const char quote = s[i];
  for (size_t j = i + 1; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
    } else if (s[j] == quote) {
      return j + 1;
    }
  }
  return s.size();
}

// The plain `inputs.NAME` / `vars.NAME` of an expression, outside strings
// and comments. nullopt when the expression may rebind those names (it
// defines functions or locals): then nothing about it is certain.
std::optional<std::vector<Reference>> PlainReferences(std::string_view e) {
  std::vector<Reference> out;
  char before = 0;  // the last character that is not a space, outside strings and comments
  size_t i = 0;
  while (i < e.size()) {
    const char c = e[i];
    size_t level = 0;
    if (c == '-' && i + 1 < e.size() && e[i + 1] == '-') {
      size_t open = LongBracket(e, i + 2, level);
      if (open) {
        i = SkipLong(e, i + 2 + open, level);
      } else {
        size_t end = e.find('\n', i);
        i = end == std::string_view::npos ? e.size() : end + 1;
      }
      continue;
    }
    if (c == '"' || c == '\'') {
      i = SkipQuoted(e, i);
      before = '"';
      continue;
    }
    if (size_t open = LongBracket(e, i, level)) {
      i = SkipLong(e, i + open, level);
      before = '"';
      continue;
    }
    if (c >= '0' && c <= '9') {  // a number, with its exponent and fraction
      while (i < e.size() &&
             (IdentChar(e[i]) || e[i] == '.' ||
              ((e[i] == '+' || e[i] == '-') &&
               (e[i - 1] == 'e' || e[i - 1] == 'E' || e[i - 1] == 'p' || e[i - 1] == 'P')))) {
        ++i;
      }
      before = '0';
      continue;
    }
    if (IdentStart(c)) {
      size_t start = i;
      while (i < e.size() && IdentChar(e[i])) ++i;
      std::string_view word = e.substr(start, i - start);
      if (word == "function" || word == "local") return std::nullopt;
      bool field = before == '.' || before == ':';
      if (!field && (word == "inputs" || word == "vars") && i + 1 < e.size() && e[i] == '.' &&
          IdentStart(e[i + 1])) {
        size_t name_start = i + 1, j = i + 1;
        while (j < e.size() && IdentChar(e[j])) ++j;
        out.push_back({std::string(word), std::string(e.substr(name_start, j - name_start))});
      }
      before = 'a';
      continue;
    }
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') before = c;
    ++i;
  }
  return out;
}

// The expressions inside the `${...}` parts of a template.
std::vector<std::string_view> TemplateParts(std::string_view text) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i + 1 < text.size()) {
    if (text.compare(i, 3, "$${") == 0) {
      i += 3;
      continue;
    }
    if (text.compare(i, 2, "${") != 0) {
      ++i;
      continue;
    }
    size_t j = i + 2;
    int depth = 1;
    while (j < text.size()) {
      char c = text[j];
      if (c == '"' || c == '\'') {
        j = SkipQuoted(text, j);
        continue;
      }
      if (c == '{') ++depth;
      if (c == '}' && --depth == 0) break;
      ++j;
    }
    if (j >= text.size()) break;  // unclosed: the syntax check reports it
    parts.push_back(text.substr(i + 2, j - i - 2));
    i = j + 1;
  }
  return parts;
}

class ReferenceChecker {
 public:
  explicit ReferenceChecker(const Workflow& wf) : wf_(wf) {
    for (const auto& [name, _] : wf.inputs) inputs_.insert(name);
    if (wf.vars.is_object()) {
      for (auto it = wf.vars.begin(); it != wf.vars.end(); ++it) vars_.insert(it.key());
    }
    CollectVars(wf.steps);
  }

  Status Steps(const std::vector<Step>& steps) {
    for (const auto& s : steps) KEEL_RETURN_IF_ERROR(One(s));
    return Status::OK();
  }

  Status Outputs(const std::map<std::string, int>* lines) {
    for (const auto& [name, expr] : wf_.outputs) {
      int line = 0;
      if (lines) {
        auto it = lines->find(name);
        if (it != lines->end()) line = it->second;
      }
      std::string where = Where(line, "") + "output '" + name + "'";
      KEEL_RETURN_IF_ERROR(ExpressionEngine::IsTemplate(expr) ? Template(where, expr)
                                                              : Expression(where, expr));
    }
    return Status::OK();
  }

 private:
  void CollectVars(const std::vector<Step>& steps) {
    for (const auto& s : steps) {
      if (!s.save_as.empty()) vars_.insert(s.save_as);
      for (const auto& [var, _] : s.set) vars_.insert(var);
      if (!s.on_error.empty() || !s.on_timeout.empty()) vars_.insert("error");
      for (const auto& [_, branch] : s.branches) CollectVars(branch);
      CollectVars(s.steps);
    }
  }

  std::string Where(int line, const std::string& step) const {
    std::string out = wf_.source;
    if (line > 0) out += ":" + std::to_string(line);
    out += ": ";
    if (!step.empty()) out += "step '" + step + "': ";
    return out;
  }

  Status Expression(const std::string& where, std::string_view expr) const {
    auto refs = PlainReferences(expr);
    if (!refs) return Status::OK();
    for (const auto& r : *refs) {
      if (r.root == "inputs" && !inputs_.count(r.name)) {
        return Status::InvalidArgument(where + ": reads 'inputs." + r.name +
                                       "', but the workflow declares no input '" + r.name +
                                       "' (declare it under 'inputs:')");
      }
      if (r.root == "vars" && !vars_.count(r.name)) {
        return Status::InvalidArgument(where + ": reads 'vars." + r.name + "', but no step sets '" +
                                       r.name + "' (it is in no 'vars:', 'save_as' or 'set:')");
      }
    }
    return Status::OK();
  }

  Status Template(const std::string& where, std::string_view text) const {
    for (auto part : TemplateParts(text)) KEEL_RETURN_IF_ERROR(Expression(where, part));
    return Status::OK();
  }

  // Every string of an activity's input, as templates.
  Status With(const std::string& where, const Json& v) const {
    if (v.is_string()) return Template(where, v.get_ref<const std::string&>());
    if (v.is_array()) {
      for (size_t i = 0; i < v.size(); ++i)
        KEEL_RETURN_IF_ERROR(With(where + "[" + std::to_string(i) + "]", v[i]));
    } else if (v.is_object()) {
      for (auto it = v.begin(); it != v.end(); ++it)
        KEEL_RETURN_IF_ERROR(With(where + "." + it.key(), *it));
    }
    return Status::OK();
  }

  Status One(const Step& s) {
    const std::string at = Where(s.line, s.id);
    if (!s.when.empty()) KEEL_RETURN_IF_ERROR(Expression(at + "when", s.when));
    if (s.go_to && !s.go_to->when.empty())
      KEEL_RETURN_IF_ERROR(Expression(at + "goto.when", s.go_to->when));
    KEEL_RETURN_IF_ERROR(With(at + "with", s.with));
    KEEL_RETURN_IF_ERROR(Template(at + "approval.prompt", s.prompt));
    KEEL_RETURN_IF_ERROR(Template(at + "wait_signal.topic", s.topic));
    KEEL_RETURN_IF_ERROR(Template(at + "sleep.until", s.sleep_until));
    KEEL_RETURN_IF_ERROR(Template(at + "pause", s.pause_reason));
    for (const auto& [var, expr] : s.set) KEEL_RETURN_IF_ERROR(Expression(at + "set." + var, expr));
    if (!s.for_each.empty()) KEEL_RETURN_IF_ERROR(Expression(at + "for_each", s.for_each));
    for (const auto& [_, branch] : s.branches) KEEL_RETURN_IF_ERROR(Steps(branch));
    return Steps(s.steps);
  }

  const Workflow& wf_;
  std::set<std::string> inputs_;
  std::set<std::string> vars_;
};

}  // namespace

Status CheckReferences(const Workflow& wf, const std::map<std::string, int>* output_lines) {
  ReferenceChecker checker(wf);
  KEEL_RETURN_IF_ERROR(checker.Steps(wf.steps));
  return checker.Outputs(output_lines);
}

}  // namespace keel
