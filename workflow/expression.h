#pragma once

// Expressions and templates of workflow files, evaluated by Lua 5.4 in a
// sandbox.
//
// An expression is a Lua expression: `inputs.amount > 1000`,
// `vars.tries + 1`, `#vars.items`, `(function() ... end)()`. People write
// JavaScript-style operators too, so outside string literals and comments
// `!=`/`!==` become `~=`, `===` becomes `==`, `&&` `and`, `||` `or`, `!x`
// `not x`, and a `null` that is not a field name (`a.null`) becomes `nil`.
// Only a single expression is accepted ("return " .. expr must compile).
//
// Context: a JSON object whose top-level keys (inputs, vars, steps, item)
// are the expression's globals; each is converted to Lua on first use.
// JSON -> Lua: object -> table, array -> sequence (1-based, as Lua's `#` and
// ipairs expect: `vars.items[1]` is the first item), string -> string,
// integer -> integer, other number -> float, null -> nil (so `x == null`
// works; a null inside an array leaves a hole, and a null member of an object
// is absent).
// Lua -> JSON: a table whose keys are exactly 1..n -> array; other tables ->
// object (integer keys written as decimal strings); an empty table -> [] unless
// it came from a JSON object; a float with an integral value -> integer (so
// `${vars.tries}` renders `3`, not `3.0`); nil -> null. A function, a NaN or
// infinity, a string that is not UTF-8 or nesting deeper than 100 levels is an
// error. Truthiness is Lua's: only nil (null) and false are false.
//
// Templates: a string with `${expr}` parts. A string that is exactly one
// `${expr}` renders to the JSON value of expr (a number stays a number);
// otherwise each part is replaced by text: strings raw, integral numbers
// without ".0", anything else (null, booleans, lists, maps) as compact JSON.
// `$${` writes a literal `${`. Inside `${...}` braces nest and string literals
// may contain `}`.
//
// Sandbox: only the base library (without dofile, loadfile, load, require,
// collectgarbage, print, warn, rawset), string, table, math and utf8; no io,
// os, package or debug. The libraries are read-only and every evaluation gets
// fresh globals, so an expression cannot change what a later one sees. An
// evaluation that runs more than `instructions` VM instructions fails with
// "expression exceeded its instruction budget"; one that needs more than
// `memory_bytes` fails with "expression exceeded its memory limit". The budget
// counts Lua instructions only: a single library call on a huge input (a
// pathological string.find pattern) is bounded by the memory limit's effect on
// the input size, not by the budget.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "keel/status.h"
#include "keel/workflow.h"

namespace keel {

struct ExpressionLimits {
  uint64_t instructions = 1'000'000;  // Lua VM instructions per evaluation
  size_t memory_bytes = 32u << 20;    // all memory of the Lua state
  size_t cache_entries = 512;         // compiled expressions kept (least recently used go)
};

// Evaluates expressions and renders templates. Not thread-safe: use one per
// thread (or per actor). Cheap to reuse: the Lua state lives as long as the
// engine, and compiled expressions are cached by their text.
// Every error is InvalidArgument and names the expression.
class ExpressionEngine {
 public:
  ExpressionEngine();
  explicit ExpressionEngine(ExpressionLimits limits);
  ~ExpressionEngine();
  ExpressionEngine(const ExpressionEngine&) = delete;
  ExpressionEngine& operator=(const ExpressionEngine&) = delete;

  // Keys that a context lacks, built only when an expression asks for one: a
  // large part shared by many evaluations (the interpreter's `steps`) is
  // neither copied into each context nor built for expressions that never
  // read it. Returns an object.
  using More = std::function<const Json&()>;

  // The value of `expr` in `context` ({inputs, vars, steps, item}), looking
  // up keys `context` lacks in `more`.
  Result<Json> Evaluate(std::string_view expr, const Json& context, const More& more = nullptr);

  // Lua truthiness of `expr` (for `when` and `goto.when`).
  Result<bool> Test(std::string_view expr, const Json& context);

  // `value` with every string rendered as a template, through nested objects
  // and arrays (object keys are not rendered). Other values are unchanged.
  Result<Json> Render(const Json& value, const Json& context, const More& more = nullptr);

  // Whether `expr` compiles (without running it). Thread-safe.
  static Status Check(std::string_view expr);
  // Whether every ${...} of `text` is closed and compiles. Thread-safe.
  static Status CheckTemplate(std::string_view text);
  // Whether `text` holds a ${...} part (and so is a template, not a literal).
  static bool IsTemplate(std::string_view text);
  // Lua truthiness of a JSON value: false only for null and false.
  static bool Truthy(const Json& value);
  // The Lua text an expression becomes (JS-style operators translated).
  static std::string Translate(std::string_view expr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace keel
