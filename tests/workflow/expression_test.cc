// The Lua expression sandbox: values, JS-style operators, templates, the
// sandbox's limits and error messages.

#include "workflow/expression.h"

#include <gtest/gtest.h>

#include <chrono>

#include "tests/support/test_util.h"

namespace keel {
namespace {

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

class ExpressionTest : public ::testing::Test {
 protected:
  ExpressionTest() {
    ctx_ = Json::parse(R"({
      "inputs": {"amount": 1500, "order_id": "o-1", "price": 2.5},
      "vars": {"tries": 2, "items": [10, 20, 30], "empty": [], "none": {}, "nothing": null,
               "holes": [1, null, 3], "reservation": {"items": ["a", "b"], "ok": true},
               "name": "ann", "null": "field named null"},
      "steps": {"reserve": {"output": {"id": 7}, "status": "completed"}},
      "item": {"sku": "x1", "qty": 3}
    })");
  }

  Json Eval(const std::string& expr) {
    auto v = engine_.Evaluate(expr, ctx_);
    EXPECT_TRUE(v.ok()) << expr << ": " << v.status().ToString();
    return v.ok() ? *v : Json("<error>");
  }
  std::string ErrorOf(const std::string& expr) {
    auto v = engine_.Evaluate(expr, ctx_);
    if (v.ok()) {
      ADD_FAILURE() << expr << " gave " << v->dump();
      return "";
    }
    EXPECT_EQ(v.status().code(), Status::Code::kInvalidArgument);
    return v.status().message();
  }
  Json Render(const Json& value) {
    auto v = engine_.Render(value, ctx_);
    EXPECT_TRUE(v.ok()) << value.dump() << ": " << v.status().ToString();
    return v.ok() ? *v : Json("<error>");
  }

  ExpressionEngine engine_;
  Json ctx_;
};

TEST_F(ExpressionTest, ArithmeticComparisonAndNestedAccess) {
  EXPECT_EQ(Eval("1 + 2 * 3"), 7);
  EXPECT_EQ(Eval("vars.tries + 1"), 3);
  EXPECT_TRUE(Eval("vars.tries + 1").is_number_integer());
  EXPECT_EQ(Eval("10 / 4"), 2.5);
  EXPECT_EQ(Eval("10 / 2"), 5) << "integral floats come back as integers";
  EXPECT_TRUE(Eval("10 / 2").is_number_integer());
  EXPECT_EQ(Eval("inputs.price * 2"), 5);
  EXPECT_EQ(Eval("inputs.amount > 1000"), true);
  EXPECT_EQ(Eval("inputs.amount <= 1000"), false);
  EXPECT_EQ(Eval("vars.reservation.items[2]"), "b") << "arrays are 1-based";
  EXPECT_EQ(Eval("#vars.items"), 3);
  EXPECT_EQ(Eval("steps.reserve.output.id"), 7);
  EXPECT_EQ(Eval("steps.reserve.status == 'completed'"), true);
  EXPECT_EQ(Eval("item.sku .. '/' .. item.qty"), "x1/3");
  EXPECT_EQ(Eval("vars.name:upper()"), "ANN");
  EXPECT_EQ(Eval("string.format('%05d', 42)"), "00042");
  EXPECT_EQ(Eval("math.max(3, 9, 4)"), 9);
  EXPECT_EQ(Eval("vars.missing"), nullptr);
  EXPECT_EQ(Eval("vars.nothing == nil"), true);
}

TEST_F(ExpressionTest, KeysMissingFromTheContextAreLookedUpInMore) {
  Json steps = {{"steps", ctx_["steps"]}};
  int built = 0;
  ExpressionEngine::More more = [&]() -> const Json& {
    ++built;
    return steps;
  };
  Json ctx = ctx_;
  ctx.erase("steps");
  auto v = engine_.Evaluate("vars.tries * 2", ctx, more);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 4);
  EXPECT_EQ(built, 0);  // not asked for: never built
  v = engine_.Evaluate("steps.reserve.output.id + vars.tries", ctx, more);
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 9);
  EXPECT_EQ(built, 1);
  Json shadow = {{"vars", {{"tries", 100}}}};
  v = engine_.Evaluate("vars.tries", ctx, [&]() -> const Json& { return shadow; });
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_EQ(*v, 2);  // the context wins
  auto rendered = engine_.Render(Json{{"id", "${steps.reserve.output.id}"}}, ctx, more);
  ASSERT_TRUE(rendered.ok()) << rendered.status().ToString();
  EXPECT_EQ(*rendered, (Json{{"id", 7}}));
  EXPECT_FALSE(engine_.Evaluate("steps.reserve.output.id", ctx).ok());  // no `more`: nil
}

TEST_F(ExpressionTest, JavaScriptStyleOperatorsAreTranslated) {
  EXPECT_EQ(Eval("vars.tries != 3"), true);
  EXPECT_EQ(Eval("vars.tries !== 2"), false);
  EXPECT_EQ(Eval("vars.tries === 2"), true);
  EXPECT_EQ(Eval("inputs.amount > 1000 && vars.tries < 3"), true);
  EXPECT_EQ(Eval("false || vars.reservation.ok"), true);
  EXPECT_EQ(Eval("!vars.reservation.ok"), false);
  EXPECT_EQ(Eval("!(vars.tries > 5)"), true);
  EXPECT_EQ(Eval("vars.nothing == null"), true);
  EXPECT_EQ(Eval("vars.null"), "field named null") << "a field named null stays a field";
  EXPECT_EQ(Eval("'a != b && c || !d'"), "a != b && c || !d") << "strings are left alone";
  EXPECT_EQ(Eval("[[x != y]]"), "x != y");
  EXPECT_EQ(Eval("1 ~= 2"), true) << "Lua's own operator still works";
  EXPECT_EQ(ExpressionEngine::Translate("a != b -- != stays in comments"),
            "a ~= b -- != stays in comments");
}

TEST_F(ExpressionTest, TablesComeBackAsJsonArraysAndObjects) {
  EXPECT_EQ(Eval("vars.items"), Json::parse("[10, 20, 30]"));
  EXPECT_EQ(Eval("{1, 2, 3}"), Json::parse("[1, 2, 3]"));
  EXPECT_EQ(Eval("{a = 1, b = {true, 'x'}}"), Json::parse(R"({"a": 1, "b": [true, "x"]})"));
  EXPECT_EQ(Eval("{[1] = 'a', [3] = 'c'}"), Json::parse(R"({"1": "a", "3": "c"})"));
  EXPECT_EQ(Eval("{}"), Json::array()) << "a fresh empty table is a list";
  EXPECT_EQ(Eval("vars.empty"), Json::array());
  EXPECT_EQ(Eval("vars.none"), Json::object()) << "an empty JSON object keeps its shape";
  EXPECT_EQ(Eval("vars.holes"), Json::parse("[1, null, 3]"));
  EXPECT_EQ(Eval("vars.reservation"), ctx_["vars"]["reservation"]);
  // A for_each list built in Lua.
  EXPECT_EQ(Eval("(function() local t = {} for i = 1, 3 do t[#t + 1] = i * i end return t end)()"),
            Json::parse("[1, 4, 9]"));
}

TEST_F(ExpressionTest, ValuesWithoutJsonFormAreErrors) {
  EXPECT_HAS(ErrorOf("function() end"), "has no JSON form");
  EXPECT_HAS(ErrorOf("1/0"), "JSON cannot hold");
  EXPECT_HAS(ErrorOf("0/0"), "JSON cannot hold");
  EXPECT_HAS(ErrorOf("string.char(255)"), "not UTF-8");
  EXPECT_HAS(ErrorOf("(function() local t = {} t.self = t return t end)()"), "nested too deeply");
}

TEST_F(ExpressionTest, TemplatesRenderWholeValuesAndInterpolateText) {
  EXPECT_EQ(Render("${vars.tries}"), 2) << "a whole ${} keeps the value's type";
  EXPECT_EQ(Render("${vars.items}"), Json::parse("[10, 20, 30]"));
  EXPECT_EQ(Render("${item}"), ctx_["item"]);
  EXPECT_EQ(Render("try ${vars.tries + 1}"), "try 3");
  EXPECT_EQ(Render("n=${vars.tries * 1.5}"), "n=3") << "no .0";
  EXPECT_EQ(Render("${inputs.price}!"), "2.5!");
  EXPECT_EQ(Render("ship ${inputs.order_id}?"), "ship o-1?");
  EXPECT_EQ(Render("${vars.name}-${vars.tries}"), "ann-2");
  EXPECT_EQ(Render("ok=${vars.reservation.ok} xs=${vars.items} m=${vars.missing}"),
            "ok=true xs=[10,20,30] m=null");
  EXPECT_EQ(Render("${ {a = '}'} }"), Json::parse(R"({"a": "}"})"))
      << "braces nest, strings hide }";
  EXPECT_EQ(Render("cost $${price}"), "cost ${price}") << "$${ escapes";
  EXPECT_EQ(Render("plain"), "plain");
  EXPECT_EQ(
      Render(Json::parse(
          R"({"argv": ["./r.sh", "${inputs.order_id}"], "n": 3, "x": {"y": "${vars.tries}"}})")),
      Json::parse(R"({"argv": ["./r.sh", "o-1"], "n": 3, "x": {"y": 2}})"));
  auto unterminated = engine_.Render("a ${vars.tries", ctx_);
  ASSERT_FALSE(unterminated.ok());
  EXPECT_HAS(unterminated.status().message(), "unterminated");
  auto failing = engine_.Render("x ${vars.missing.field}", ctx_);
  ASSERT_FALSE(failing.ok());
  EXPECT_HAS(failing.status().message(), "expression 'vars.missing.field' failed");
}

TEST_F(ExpressionTest, WhenUsesLuaTruthiness) {
  auto t = [&](const std::string& e) {
    auto r = engine_.Test(e, ctx_);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() && *r;
  };
  EXPECT_TRUE(t("inputs.amount > 1000"));
  EXPECT_FALSE(t("vars.missing"));
  EXPECT_FALSE(t("false"));
  EXPECT_TRUE(t("0")) << "0 is true in Lua";
  EXPECT_TRUE(t("''"));
  EXPECT_TRUE(ExpressionEngine::Truthy(Json::object()));
  EXPECT_FALSE(ExpressionEngine::Truthy(nullptr));
}

TEST_F(ExpressionTest, ParseErrorsAreInvalidArgumentNamingTheExpression) {
  for (const char* bad : {"1 +", "vars.", "x = 1", "return 1", "a b", "((1)", "1; os.exit()"}) {
    Status s = ExpressionEngine::Check(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
    EXPECT_HAS(s.message(), std::string("expression '") + bad + "' does not parse");
    auto v = engine_.Evaluate(bad, ctx_);
    ASSERT_FALSE(v.ok());
    EXPECT_HAS(v.status().message(), "does not parse");
  }
  EXPECT_HAS(ExpressionEngine::Check("  ").message(), "empty");
  EXPECT_OK(ExpressionEngine::Check("vars.tries + 1"));
  EXPECT_OK(ExpressionEngine::CheckTemplate("a ${b} c ${d + 1}"));
  EXPECT_OK(ExpressionEngine::CheckTemplate("no template"));
  EXPECT_HAS(ExpressionEngine::CheckTemplate("a ${b +} c").message(),
             "expression 'b +' does not parse");
  EXPECT_HAS(ExpressionEngine::CheckTemplate("a ${} c").message(), "empty");
}

TEST_F(ExpressionTest, RuntimeErrorsNameTheExpression) {
  std::string e = ErrorOf("vars.missing.field + 1");
  EXPECT_HAS(e, "expression 'vars.missing.field + 1' failed: attempt to index a nil value");
  EXPECT_HAS(ErrorOf("error('boom')"), "failed: boom");
  EXPECT_HAS(ErrorOf("'a' + 1"), "failed:");
}

TEST_F(ExpressionTest, SandboxHasNoIoOsPackageOrLoaders) {
  for (const char* e : {"io.open('/etc/passwd')", "os.execute('true')", "os.exit(1)",
                        "require('os')", "load('return 1')()", "dofile('/etc/passwd')",
                        "loadfile('/etc/passwd')", "debug.getinfo(1)", "package.loaded",
                        "collectgarbage()", "print('x')", "rawset(string, 'x', 1)",
                        "setmetatable({}, {__gc = function() end})", "getmetatable('').__index"}) {
    auto v = engine_.Evaluate(e, ctx_);
    EXPECT_FALSE(v.ok() && !v->is_null()) << e << " gave " << (v.ok() ? v->dump() : "");
  }
  EXPECT_EQ(Eval("io"), nullptr);
  EXPECT_EQ(Eval("os"), nullptr);
  EXPECT_EQ(Eval("load"), nullptr);
  EXPECT_EQ(Eval("require"), nullptr);
}

TEST_F(ExpressionTest, EvaluationsCannotChangeWhatLaterOnesSee) {
  Eval("(function() leaked = 1 return 1 end)()");
  EXPECT_EQ(Eval("leaked"), nullptr);
  EXPECT_HAS(ErrorOf("(function() string.upper = nil end)()"), "read-only");
  EXPECT_HAS(ErrorOf("(function() math.pi = 3 end)()"), "read-only");
  EXPECT_EQ(Eval("string.upper('a')"), "A");
  Eval("(function() vars.tries = 99 return 1 end)()");
  EXPECT_EQ(Eval("vars.tries"), 2) << "the context is converted afresh";
  Eval("(function() inputs = nil return 1 end)()");
  EXPECT_EQ(Eval("inputs.amount"), 1500);
}

TEST_F(ExpressionTest, EndlessLoopFailsWithTheBudgetErrorAndDoesNotHang) {
  auto start = std::chrono::steady_clock::now();
  std::string e = ErrorOf("(function() while true do end end)()");
  EXPECT_HAS(e, "expression exceeded its instruction budget");
  // Catching the budget error inside the expression does not buy more time.
  EXPECT_HAS(
      ErrorOf("(function() while true do pcall(function() while true do end end) end end)()"),
      "instruction budget");
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  EXPECT_EQ(Eval("vars.tries + 1"), 3) << "the engine works after a budget error";
}

TEST_F(ExpressionTest, MemoryBombFailsWithTheMemoryError) {
  EXPECT_HAS(ErrorOf("string.rep('x', 1 << 30)"), "exceeded its memory limit");
  EXPECT_HAS(ErrorOf("(function() local t = {} for i = 1, 1e7 do t[i] = {i} end return #t end)()"),
             "exceeded its");
  EXPECT_HAS(ErrorOf("(function() local s = 'x' while true do s = s .. s end end)()"),
             "exceeded its memory limit");
  EXPECT_EQ(Eval("#vars.items"), 3) << "the engine works after a memory error";
}

TEST_F(ExpressionTest, SmallLimitsAndCacheEvictionKeepWorking) {
  ExpressionEngine small({.instructions = 1000, .memory_bytes = 4u << 20, .cache_entries = 2});
  auto loop = small.Evaluate(
      "(function() local n = 0 for i = 1, 100000 do n = n + i end return n end)()", ctx_);
  ASSERT_FALSE(loop.ok());
  EXPECT_HAS(loop.status().message(), "budget (1000 instructions)");
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 10; ++i) {
      auto v = small.Evaluate("vars.tries + " + std::to_string(i), ctx_);
      ASSERT_OK(v);
      EXPECT_EQ(*v, 2 + i);
    }
  }
}

TEST_F(ExpressionTest, ManyEvaluationsReuseTheEngine) {
  for (int i = 0; i < 20000; ++i) {
    ctx_["vars"]["tries"] = i;
    auto v = engine_.Evaluate("vars.tries * 2", ctx_);
    ASSERT_OK(v);
    ASSERT_EQ(*v, 2 * i);
  }
}

}  // namespace
}  // namespace keel
