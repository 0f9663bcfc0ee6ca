// Workflow definitions: parsing (YAML and JSON), validation messages,
// canonical JSON and hash, inputs, the C++ builder, durations and retry delays.

#include "keel/workflow.h"

#include <gtest/gtest.h>

#include "base/time.h"
#include "base/validate.h"
#include "tests/support/test_util.h"

namespace keel {
namespace {

const std::string kData = KEEL_WORKFLOW_TEST_DATA;

class WorkflowTest : public ::testing::Test {
 protected:
  static Result<Workflow> Parse(const std::string& yaml, const std::string& source = "wf.yaml") {
    return ParseWorkflow(yaml, source);
  }

  // The message of a workflow that must be refused (InvalidArgument).
  static std::string ErrorOf(const std::string& yaml, const std::string& source = "wf.yaml") {
    auto wf = Parse(yaml, source);
    if (wf.ok()) {
      ADD_FAILURE() << "accepted:\n" << yaml;
      return "";
    }
    EXPECT_EQ(wf.status().code(), Status::Code::kInvalidArgument) << wf.status().ToString();
    return wf.status().message();
  }

  // A one-step workflow around the step body `step` (YAML map entries, each
  // line indented by 4 spaces; the step's "- id: a" is on line 3).
  static std::string OneStep(const std::string& step) {
    return "name: t\nsteps:\n  - id: a\n" + step;
  }

  static Workflow Order() {
    auto wf = LoadWorkflowFile(kData + "/order.yaml");
    EXPECT_TRUE(wf.ok()) << wf.status().ToString();
    return wf.ok() ? *wf : Workflow{};
  }
};

#define EXPECT_HAS(text, part) EXPECT_NE((text).find(part), std::string::npos) << (text)

// --- The example of WORKFLOW.md -------------------------------------------

TEST_F(WorkflowTest, ExampleOfTheContractParsesWithEveryConstruct) {
  Workflow wf = Order();
  EXPECT_EQ(wf.name, "order");
  EXPECT_EQ(wf.source, kData + "/order.yaml");
  ASSERT_EQ(wf.inputs.size(), 2u);
  EXPECT_TRUE(wf.inputs["order_id"].required);
  EXPECT_FALSE(wf.inputs["order_id"].default_value.has_value());
  EXPECT_FALSE(wf.inputs["amount"].required);
  EXPECT_EQ(wf.inputs["amount"].default_value, Json(0));
  EXPECT_EQ(wf.vars, Json({{"tries", 0}}));
  ASSERT_EQ(wf.steps.size(), 9u);

  const Step& reserve = wf.steps[0];
  EXPECT_EQ(reserve.id, "reserve");
  EXPECT_EQ(reserve.line, 8);
  EXPECT_EQ(reserve.kind, StepKind::kActivity);
  EXPECT_EQ(reserve.activity, "exec");
  EXPECT_EQ(reserve.with, Json::parse(R"({"argv": ["./reserve.sh", "${inputs.order_id}"]})"));
  EXPECT_EQ(reserve.save_as, "reservation");
  EXPECT_EQ(reserve.timeout_ms, 5000);
  EXPECT_EQ(reserve.retry.max_attempts, 3u);
  EXPECT_EQ(reserve.retry.backoff_ms, 200);
  EXPECT_EQ(reserve.retry.multiplier, 2.0);
  EXPECT_EQ(reserve.retry.max_backoff_ms, 10'000);
  EXPECT_EQ(reserve.on_error, "compensate");

  const Step& big = wf.steps[1];
  EXPECT_EQ(big.kind, StepKind::kApproval);
  EXPECT_EQ(big.when, "inputs.amount > 1000");
  EXPECT_EQ(big.prompt, "ship ${inputs.order_id}?");
  EXPECT_EQ(big.expires_ms, 24 * 3600 * 1000);

  const Step& pack = wf.steps[2];
  EXPECT_EQ(pack.kind, StepKind::kParallel);
  ASSERT_EQ(pack.branches.size(), 2u);
  EXPECT_EQ(pack.branches[0].first, "label");  // file order, not sorted
  EXPECT_EQ(pack.branches[1].first, "box");
  ASSERT_EQ(pack.branches[0].second.size(), 1u);
  EXPECT_EQ(pack.branches[0].second[0].id, "print");
  EXPECT_EQ(pack.branches[1].second[0].id, "fold");
  EXPECT_EQ(pack.branches[1].second[0].with, Json({{"text", "box"}}));
  EXPECT_EQ(pack.join.kind, Join::kAll);

  const Step& notify = wf.steps[3];
  EXPECT_EQ(notify.kind, StepKind::kForEach);
  EXPECT_EQ(notify.for_each, "vars.reservation.items");
  EXPECT_EQ(notify.concurrency, 4u);
  ASSERT_EQ(notify.steps.size(), 1u);
  EXPECT_EQ(notify.steps[0].id, "send");
  EXPECT_EQ(notify.steps[0].with, Json({{"text", "${item}"}}));
  EXPECT_EQ(notify.save_as, "receipts");

  const Step& paid = wf.steps[4];
  EXPECT_EQ(paid.kind, StepKind::kWaitSignal);
  EXPECT_EQ(paid.topic, "payment-${inputs.order_id}");
  EXPECT_EQ(paid.wait_timeout_ms, 24 * 3600 * 1000);
  EXPECT_EQ(paid.on_timeout, "compensate");
  EXPECT_EQ(paid.save_as, "payment");

  EXPECT_EQ(wf.steps[5].kind, StepKind::kSleep);
  EXPECT_EQ(wf.steps[5].sleep_ms, 600'000);
  EXPECT_EQ(wf.steps[6].kind, StepKind::kPause);
  EXPECT_EQ(wf.steps[6].pause_reason, "inspect before shipping");

  const Step& count = wf.steps[7];
  EXPECT_EQ(count.kind, StepKind::kSet);
  ASSERT_EQ(count.set.size(), 1u);
  EXPECT_EQ(count.set[0], std::make_pair(std::string("tries"), std::string("vars.tries + 1")));
  ASSERT_TRUE(count.go_to.has_value());
  EXPECT_EQ(count.go_to->step, "reserve");
  EXPECT_EQ(count.go_to->when, "vars.tries < 3");

  EXPECT_EQ(wf.steps[8].activity, "fail");
  EXPECT_EQ(wf.steps[8].with["message"], "could not reserve ${inputs.order_id}");
  ASSERT_EQ(wf.outputs.size(), 1u);
  EXPECT_EQ(wf.outputs[0], std::make_pair(std::string("payment"), std::string("vars.payment")));
}

TEST_F(WorkflowTest, FindStepSearchesNestedBranchesAndForEachBodies) {
  Workflow wf = Order();
  ASSERT_NE(wf.FindStep("fold"), nullptr);
  EXPECT_EQ(wf.FindStep("fold")->with["text"], "box");
  ASSERT_NE(wf.FindStep("send"), nullptr);
  EXPECT_EQ(wf.FindStep("send")->activity, "echo");
  EXPECT_EQ(wf.FindStep("compensate"), &wf.steps.back());
  EXPECT_EQ(wf.FindStep("nope"), nullptr);
}

TEST_F(WorkflowTest, JsonFormGivesTheSameDefinitionAsYaml) {
  auto json = LoadWorkflowFile(kData + "/order.json");
  ASSERT_OK(json);
  Workflow yaml = Order();
  EXPECT_EQ(json->ToJson(), yaml.ToJson());
  EXPECT_EQ(json->Hash(), yaml.Hash());
  EXPECT_GT(json->FindStep("count")->line, 1);  // JSON keeps its lines too
}

// --- Canonical JSON and hash ------------------------------------------------

TEST_F(WorkflowTest, CanonicalJsonRoundTripsThroughTextAndKeepsTheHash) {
  Workflow wf = Order();
  Json canonical = wf.ToJson();
  EXPECT_EQ(canonical["format"], 1);
  EXPECT_EQ(canonical["steps"][0]["timeout_ms"], 5000);
  EXPECT_EQ(canonical["steps"][2]["branches"][0]["name"], "label");
  EXPECT_EQ(canonical["outputs"], Json::parse(R"([["payment", "vars.payment"]])"));
  EXPECT_EQ(canonical.dump().find("line"), std::string::npos) << "no source positions";

  auto back = Workflow::FromJson(Json::parse(canonical.dump()));
  ASSERT_OK(back);
  EXPECT_EQ(back->source, "<stored>");
  EXPECT_EQ(back->ToJson(), canonical);
  EXPECT_EQ(back->Hash(), wf.Hash());
  EXPECT_EQ(back->steps[2].branches[1].first, "box");
  EXPECT_EQ(back->FindStep("count")->go_to->when, "vars.tries < 3");
  EXPECT_EQ(back->FindStep("reserve")->retry.DelayMs(2), 400);
  EXPECT_EQ(wf.Hash().size(), 64u);
}

TEST_F(WorkflowTest, HashIgnoresKeyOrderLayoutCommentsAndDurationSpelling) {
  auto a = Parse(R"(name: h
vars: {a: 1, b: [1, 2]}
steps:
  - id: s
    activity: echo
    with: {text: hi, n: 2}
    timeout: 90s
    retry: {max_attempts: 2, backoff: 1s}
outputs: {x: "vars.a", y: "vars.b"}
)");
  auto b = Parse(R"(# the same, written differently
outputs:
  x: vars.a
  y: vars.b
steps:
- retry:
    backoff: 1000ms
    max_attempts: 2
  timeout: 1m30s     # 90 seconds
  with:
    n: 2
    text: "hi"
  activity: echo
  id: s
vars:
  b: [1, 2]
  a: 1
name: h
)");
  ASSERT_OK(a);
  ASSERT_OK(b);
  EXPECT_EQ(a->Hash(), b->Hash());
  auto c = Parse(R"(name: h
vars: {a: 1, b: [1, 2]}
steps: [{id: s, activity: echo, with: {text: hi, n: 2}, timeout: 91s, retry: {max_attempts: 2, backoff: 1s}}]
outputs: {x: "vars.a", y: "vars.b"}
)");
  ASSERT_OK(c);
  EXPECT_NE(a->Hash(), c->Hash());
  // Output order is part of the definition (outputs are evaluated in order).
  auto d = Parse(R"(name: h
vars: {a: 1, b: [1, 2]}
steps: [{id: s, activity: echo, with: {text: hi, n: 2}, timeout: 90s, retry: {max_attempts: 2, backoff: 1s}}]
outputs: {y: "vars.b", x: "vars.a"}
)");
  ASSERT_OK(d);
  EXPECT_NE(a->Hash(), d->Hash());
}

TEST_F(WorkflowTest, FromJsonRefusesUnknownKeysWrongTypesAndNewerFormats) {
  Json good = Order().ToJson();
  Json unknown = good;
  unknown["steps"][0]["bogus"] = 1;
  auto u = Workflow::FromJson(unknown);
  ASSERT_FALSE(u.ok());
  EXPECT_HAS(u.status().message(), "<stored>: step 'reserve': unknown key 'bogus'");

  Json typed = good;
  typed["steps"][0]["timeout_ms"] = "5s";
  EXPECT_FALSE(Workflow::FromJson(typed).ok());

  Json newer = good;
  newer["format"] = 2;
  EXPECT_EQ(Workflow::FromJson(newer).status().code(), Status::Code::kNotSupported);

  // The same validation as files: a goto to a missing step.
  Json dangling = good;
  dangling["steps"][7]["goto"]["step"] = "nowhere";
  auto g = Workflow::FromJson(dangling, "db");
  ASSERT_FALSE(g.ok());
  EXPECT_HAS(g.status().message(), "db: step 'count': goto 'nowhere' is not a step");
}

// --- Other spellings ----------------------------------------------------------

TEST_F(WorkflowTest, ParallelAsListOfListsNamesBranchesByIndex) {
  auto wf = Parse(R"(name: p
steps:
  - id: pack
    parallel:
      - [{id: label, activity: echo, with: {text: label}}]
      - [{id: box, activity: echo, with: {text: box}}]
    join: {at_least: 2}
)");
  ASSERT_OK(wf);
  const Step& pack = wf->steps[0];
  ASSERT_EQ(pack.branches.size(), 2u);
  EXPECT_EQ(pack.branches[0].first, "0");
  EXPECT_EQ(pack.branches[1].first, "1");
  EXPECT_EQ(pack.branches[1].second[0].id, "box");
  EXPECT_EQ(pack.join.kind, Join::kAtLeast);
  EXPECT_EQ(pack.join.at_least, 2u);
}

TEST_F(WorkflowTest, ShortFormsAndJoinKinds) {
  auto wf = Parse(R"(name: s
vars: {when: "2026-12-02T00:00:00Z"}
steps:
  - {id: r, parallel: {a: [{id: x, activity: echo}], b: [{id: y, activity: echo}]}, join: first}
  - {id: q, parallel: {a: [{id: x2, activity: echo}]}, join: any}
  - {id: ok, approval: "ship?"}
  - {id: sig, wait_signal: payment}
  - {id: nap, sleep: {until: "2026-12-01T00:00:00Z"}}
  - {id: nap2, sleep: {until: "${vars.when}"}}
  - {id: stop, pause: }
  - {id: n, set: {count: 0, flag: true}, goto: r}
)");
  ASSERT_OK(wf);
  EXPECT_EQ(wf->steps[0].join.kind, Join::kFirst);
  EXPECT_EQ(wf->steps[1].join.kind, Join::kAny);
  EXPECT_EQ(wf->steps[2].prompt, "ship?");
  EXPECT_EQ(wf->steps[3].topic, "payment");
  EXPECT_EQ(wf->steps[4].sleep_until, "2026-12-01T00:00:00Z");
  EXPECT_EQ(wf->steps[5].sleep_until, "${vars.when}");
  EXPECT_EQ(wf->steps[6].kind, StepKind::kPause);
  EXPECT_EQ(wf->steps[6].pause_reason, "");
  EXPECT_EQ(wf->steps[7].set[0].second, "0");  // scalars are expressions as written
  EXPECT_EQ(wf->steps[7].set[1].second, "true");
  EXPECT_EQ(wf->steps[7].go_to->step, "r");
  EXPECT_EQ(wf->steps[7].go_to->when, "");
}

TEST_F(WorkflowTest, YamlScalarsFollowTheCoreSchemaInWithAndVars) {
  auto wf = Parse(R"(name: y
vars: {i: 42, neg: -3, hex: 0x1f, f: 2.5, e: 1e3, t: true, n: null, tilde: ~, s: "42", word: yes, ver: 1.2.3}
steps: [{id: a, activity: echo}]
)");
  ASSERT_OK(wf);
  const Json& v = wf->vars;
  EXPECT_EQ(v["i"], 42);
  EXPECT_TRUE(v["i"].is_number_integer());
  EXPECT_EQ(v["neg"], -3);
  EXPECT_EQ(v["hex"], 31);
  EXPECT_EQ(v["f"], 2.5);
  EXPECT_EQ(v["e"], 1000.0);
  EXPECT_EQ(v["t"], true);
  EXPECT_TRUE(v["n"].is_null());
  EXPECT_TRUE(v["tilde"].is_null());
  EXPECT_EQ(v["s"], "42");
  EXPECT_EQ(v["word"], "yes");  // YAML 1.2: not a boolean
  EXPECT_EQ(v["ver"], "1.2.3");
}

// --- Validation: each error names file, line and step ------------------------

TEST_F(WorkflowTest, UnknownStepKeyNamesFileStepLineAndKeyLine) {
  std::string e =
      ErrorOf("name: bad\nsteps:\n  - id: a\n    activity: echo\n    bogus: 1\n", "bad.yaml");
  EXPECT_HAS(e, "bad.yaml:3: step 'a': unknown key 'bogus' (line 5)");
  EXPECT_EQ(e.find('\n'), std::string::npos) << "one line";
}

TEST_F(WorkflowTest, UnknownKeysAreRefusedEverywhere) {
  EXPECT_HAS(ErrorOf("name: t\nstep: []\n"), "wf.yaml:2: unknown key 'step'");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    retry: {max_attempts: 2, backof: 1s}\n")),
             "wf.yaml:3: step 'a': retry: unknown key 'backof' (retry has max_attempts, backoff, "
             "multiplier, max_backoff) (line 5)");
  EXPECT_HAS(ErrorOf(OneStep("    approval: {prompt: ok, expire: 1h}\n")),
             "step 'a': approval: unknown key 'expire'");
  EXPECT_HAS(ErrorOf(OneStep("    wait_signal: {topic: t, timeout: 1h, on_timout: a}\n")),
             "step 'a': wait_signal: unknown key 'on_timout'");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    goto: {step: a, if: x}\n")),
             "step 'a': goto: unknown key 'if'");
  EXPECT_HAS(ErrorOf(OneStep("    sleep: {for: 1s}\n")), "step 'a': sleep: unknown key 'for'");
  EXPECT_HAS(
      ErrorOf(OneStep("    parallel: {x: [{id: b, activity: echo}]}\n    join: {at_most: 1}\n")),
      "step 'a': join: unknown key 'at_most'");
  EXPECT_HAS(ErrorOf("name: t\ninputs:\n  x: {required: true, type: string}\nsteps: [{id: a, "
                     "activity: echo}]\n"),
             "wf.yaml:3: input 'x': unknown key 'type'");
}

TEST_F(WorkflowTest, DuplicateYamlKeysAreRefused) {
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    save_as: x\n    save_as: y\n")),
             "wf.yaml:3: step 'a': duplicate key 'save_as' in a step (line 6)");
}

TEST_F(WorkflowTest, DuplicateStepIdsAreRefusedAcrossNestedBranches) {
  std::string e = ErrorOf(R"(name: d
steps:
  - id: fan
    parallel:
      a: [{id: work, activity: echo}]
      b: [{id: work, activity: echo}]
)");
  EXPECT_HAS(e, "wf.yaml:6: step 'work': duplicate step id (first at line 5)");
  EXPECT_HAS(
      ErrorOf("name: d\nsteps:\n  - {id: x, activity: echo}\n  - id: y\n    for_each: \"{}\"\n"
              "    steps: [{id: x, activity: echo}]\n"),
      "step 'x': duplicate step id");
}

TEST_F(WorkflowTest, StepWithoutIdOrWithBadId) {
  EXPECT_HAS(ErrorOf("name: t\nsteps:\n  - activity: echo\n"), "wf.yaml:3: a step has no 'id'");
  EXPECT_HAS(ErrorOf("name: t\nsteps:\n  - {id: a/b, activity: echo}\n"),
             "wf.yaml:3: step 'a/b': a step id must be");
}

TEST_F(WorkflowTest, StepNeedsExactlyOneKind) {
  EXPECT_HAS(ErrorOf(OneStep("    save_as: x\n")), "wf.yaml:3: step 'a': has no kind");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    sleep: 1s\n")),
             "wf.yaml:3: step 'a': has more than one kind: 'activity' and 'sleep' (line 5)");
}

TEST_F(WorkflowTest, KeysOfAnotherKindAreRefused) {
  EXPECT_HAS(ErrorOf(OneStep("    sleep: 1s\n    retry: {max_attempts: 2}\n")),
             "step 'a': 'retry' does not apply to a sleep step (line 5)");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    join: any\n")),
             "step 'a': 'join' does not apply to a activity step");
}

TEST_F(WorkflowTest, GotoOnErrorAndOnTimeoutMustNameAStepOfTheSameList) {
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    goto: nowhere\n")),
             "wf.yaml:3: step 'a': goto 'nowhere' is not a step");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    on_error: nowhere\n")),
             "step 'a': on_error 'nowhere' is not a step");
  EXPECT_HAS(ErrorOf(OneStep("    wait_signal: {topic: t, timeout: 1h, on_timeout: nowhere}\n")),
             "step 'a': on_timeout 'nowhere' is not a step");
  // Into a parallel branch from outside, and out of a branch.
  std::string e = ErrorOf(R"(name: b
steps:
  - {id: start, activity: echo, goto: inner}
  - id: fan
    parallel:
      a:
        - {id: inner, activity: echo, on_error: after}
  - {id: after, activity: echo}
)");
  EXPECT_HAS(e, "wf.yaml:3: step 'start': goto 'inner' is a step of another branch");
  EXPECT_HAS(ErrorOf(R"(name: b
steps:
  - id: fan
    parallel:
      a:
        - {id: inner, activity: echo, on_error: after}
  - {id: after, activity: echo}
)"),
             "wf.yaml:6: step 'inner': on_error 'after' is a step of another branch");
  EXPECT_HAS(ErrorOf(OneStep("    wait_signal: {topic: t, on_timeout: a}\n")),
             "on_timeout is set but there is no timeout");
}

TEST_F(WorkflowTest, BadDurationsAreRefusedWithTheKey) {
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    timeout: abc\n")),
             "wf.yaml:3: step 'a': timeout: duration 'abc' is not valid");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    timeout: 5 parsecs\n")),
             "timeout: duration '5 parsecs' is not valid");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    timeout: 5000\n")),
             "timeout: duration '5000' has no unit");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    retry: {max_attempts: 2, backoff: -1s}\n")),
             "retry.backoff: duration '-1s' is negative");
  EXPECT_HAS(ErrorOf(OneStep("    sleep: 1x\n")), "step 'a': sleep: duration '1x' is not valid");
  EXPECT_HAS(ErrorOf(OneStep("    approval: {expires: soon}\n")),
             "approval.expires: duration 'soon'");
  EXPECT_HAS(ErrorOf(OneStep("    wait_signal: {topic: t, timeout: 1y}\n")), "wait_signal.timeout");
  EXPECT_HAS(ErrorOf(OneStep("    sleep: {until: tomorrow}\n")),
             "step 'a': sleep.until: time 'tomorrow' is not an RFC 3339 time");
}

TEST_F(WorkflowTest, ExpressionsThatDoNotParseAreRefusedWherverTheyAre) {
  auto expect = [](const std::string& step, const std::string& where) {
    std::string e = ErrorOf(OneStep(step));
    EXPECT_HAS(e, "wf.yaml:3: step 'a': " + where);
    EXPECT_HAS(e, "does not parse");
  };
  expect("    activity: echo\n    when: \"1 +\"\n", "when: expression '1 +'");
  expect("    activity: echo\n    goto: {step: a, when: \"vars.x <\"}\n",
         "goto.when: expression 'vars.x <'");
  expect("    set: {x: \"vars.x +\"}\n", "set.x: expression 'vars.x +'");
  expect("    for_each: \"[1, 2]\"\n    steps: [{id: b, activity: echo}]\n",
         "for_each: expression '[1, 2]'");
  expect("    activity: echo\n    with: {argv: [ok, \"${inputs.x +}\"]}\n",
         "with.argv[1]: expression 'inputs.x +'");
  expect("    approval: {prompt: \"ship ${)}?\"}\n", "approval.prompt: expression ')'");
  expect("    wait_signal: {topic: \"pay-${inputs.}\"}\n",
         "wait_signal.topic: expression 'inputs.'");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    with: {text: \"${unclosed\"}\n")),
             "step 'a': with.text: template '${unclosed' has an unterminated ${");
  // Outputs: an expression, or a template when it holds ${.
  EXPECT_HAS(ErrorOf("name: t\nsteps: [{id: a, activity: echo}]\noutputs:\n  x: \"vars.a ==\"\n"),
             "wf.yaml:4: output 'x': expression 'vars.a ==' does not parse");
  EXPECT_HAS(
      ErrorOf("name: t\nsteps: [{id: a, activity: echo}]\noutputs:\n  y: \"n=${vars.n +}\"\n"),
      "wf.yaml:4: output 'y': expression 'vars.n +' does not parse");
}

TEST_F(WorkflowTest, RetryAndJoinLimits) {
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    retry: {max_attempts: 0}\n")),
             "step 'a': 'retry.max_attempts' must be between 1 and");
  EXPECT_HAS(
      ErrorOf(OneStep("    activity: echo\n    retry: {max_attempts: 2, multiplier: 0.5}\n")),
      "retry.multiplier must be a number >= 1");
  EXPECT_HAS(
      ErrorOf(OneStep("    parallel: {x: [{id: b, activity: echo}], y: [{id: c, activity: echo}]}\n"
                      "    join: {at_least: 3}\n")),
      "wf.yaml:3: step 'a': join at_least 3 needs between 1 and 2");
  EXPECT_HAS(ErrorOf(OneStep("    parallel: {x: [{id: b, activity: echo}]}\n    join: most\n")),
             "step 'a': unknown join 'most' (join is all, first, any or {at_least: N}) (line 5)");
}

TEST_F(WorkflowTest, MalformedYamlReportsItsLine) {
  EXPECT_HAS(ErrorOf("name: m\nsteps: [\n", "m.yaml"), "m.yaml:3: malformed YAML");
  EXPECT_HAS(ErrorOf("name: m\nsteps:\n  - {id: a, activity: echo\n  - {id: b}\n", "m.yaml"),
             "m.yaml:");
  EXPECT_HAS(ErrorOf("name: a\n---\nname: b\n"), "one YAML document");
  EXPECT_HAS(ErrorOf(""), "a workflow must be a map");
  EXPECT_HAS(ErrorOf("- 1\n- 2\n"), "wf.yaml:1: a workflow must be a map");
}

TEST_F(WorkflowTest, MissingNameOrStepsAndBadNames) {
  EXPECT_HAS(ErrorOf("steps: [{id: a, activity: echo}]\n"),
             "wf.yaml:1: the workflow has no 'name'");
  EXPECT_HAS(ErrorOf("name: t\n"), "the workflow has no 'steps'");
  EXPECT_HAS(ErrorOf("name: t\nsteps: []\n"), "wf.yaml:2: the workflow has no steps");
  EXPECT_HAS(ErrorOf("name: \"a b\"\nsteps: [{id: a, activity: echo}]\n"),
             "wf.yaml:1: workflow name 'a b'");
  EXPECT_HAS(ErrorOf(OneStep("    activity: \"\"\n")), "step 'a': 'activity' is empty");
  EXPECT_HAS(ErrorOf(OneStep("    activity: \"rm -rf\"\n")), "step 'a': activity name 'rm -rf'");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    save_as: my-var\n")),
             "save_as 'my-var' must be");
}

TEST_F(WorkflowTest, InputsDeclaredWrongAreRefused) {
  const std::string steps = "steps: [{id: a, activity: echo}]\n";
  EXPECT_HAS(ErrorOf("name: t\ninputs: [x]\n" + steps), "wf.yaml:2: 'inputs' must be a map");
  EXPECT_HAS(ErrorOf("name: t\ninputs:\n  x: {required: maybe}\n" + steps),
             "wf.yaml:3: 'inputs.x.required' must be true or false");
  EXPECT_HAS(ErrorOf("name: t\ninputs:\n  x: {required: true, default: 1}\n" + steps),
             "wf.yaml:3: input 'x' is required and has a default");
  EXPECT_HAS(ErrorOf("name: t\ninputs:\n  x: 5\n" + steps), "input 'x' must be a map");
  EXPECT_HAS(ErrorOf("name: t\ninputs:\n  my-x: {}\n" + steps), "input 'my-x' must be");
  // `x:` with nothing declares an optional input without default.
  auto ok = Parse("name: t\ninputs:\n  x:\n" + steps);
  ASSERT_OK(ok);
  EXPECT_FALSE(ok->inputs.at("x").required);
}

TEST_F(WorkflowTest, StructuralErrorsOfKinds) {
  EXPECT_HAS(ErrorOf(OneStep("    parallel: {}\n")), "'parallel' has no branches");
  EXPECT_HAS(ErrorOf(OneStep("    parallel: {x: []}\n")), "branch 'x' has no steps");
  EXPECT_HAS(ErrorOf(OneStep("    for_each: vars.xs\n")), "for_each has no 'steps'");
  EXPECT_HAS(ErrorOf(OneStep("    set: {}\n")), "'set' assigns nothing");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    with: [1]\n")), "'with' must be a map");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    concurrency: 2\n")),
             "'concurrency' does not apply");
  EXPECT_HAS(
      ErrorOf(OneStep(
          "    for_each: vars.xs\n    concurrency: -1\n    steps: [{id: b, activity: echo}]\n")),
      "'concurrency' must be between 0 and");
  EXPECT_HAS(ErrorOf(OneStep("    activity: echo\n    when: [1]\n")),
             "'when' must be an expression");
}

// --- References that no run can satisfy ------------------------------------

TEST_F(WorkflowTest, AnUndeclaredInputIsRefusedWithFileLineAndStep) {
  std::string m = ErrorOf(R"(name: t
inputs: {who: {required: true}}
steps:
  - {id: a, activity: echo, with: {text: "hi ${inputs.who}"}}
  - id: b
    activity: echo
    with: {text: "hi ${inputs.q}"}
)");
  EXPECT_HAS(m, "wf.yaml:5: step 'b': with.text: reads 'inputs.q'");
  EXPECT_HAS(m, "declares no input 'q'");
  // The same in every place an expression or template can be.
  for (std::string step : {"    when: \"inputs.q > 1\"\n    activity: echo\n",
                           "    approval: {prompt: \"${inputs.q}?\"}\n",
                           "    wait_signal: {topic: \"t-${inputs.q}\"}\n",
                           "    for_each: \"inputs.q\"\n    steps: [{id: c, activity: echo}]\n",
                           "    set: {x: \"inputs.q + 1\"}\n", "    pause: \"${inputs.q}\"\n",
                           "    activity: echo\n    goto: {step: a, when: \"!inputs.q\"}\n"}) {
    EXPECT_HAS(ErrorOf(OneStep(step)), "wf.yaml:3: step 'a': ");
    EXPECT_HAS(ErrorOf(OneStep(step)), "'inputs.q'");
  }
  std::string out = ErrorOf("name: t\nsteps: [{id: a, activity: echo}]\noutputs:\n  r: inputs.q\n");
  EXPECT_HAS(out, "wf.yaml:4: output 'r': reads 'inputs.q'");
}

TEST_F(WorkflowTest, AVariableNoStepCanSetIsRefused) {
  std::string m = ErrorOf(OneStep("    activity: echo\n    with: {text: \"${vars.nope}\"}\n"));
  EXPECT_HAS(m, "wf.yaml:3: step 'a': with.text: reads 'vars.nope', but no step sets 'nope'");
  // vars:, save_as, set: and on_error's `error` are variables a step can read.
  ASSERT_OK(Parse(R"(name: t
vars: {tries: 0}
steps:
  - {id: a, activity: echo, save_as: got, on_error: c}
  - {id: b, set: {n: "vars.tries + #vars.got"}}
  - {id: c, activity: echo, with: {text: "${vars.n} ${vars.error.message} ${vars.got}"}}
outputs: {n: vars.n}
)"));
  EXPECT_HAS(
      ErrorOf("name: t\nsteps:\n  - {id: a, activity: echo, with: {m: \"${vars.error}\"}}\n"),
      "'vars.error'");
}

TEST_F(WorkflowTest, OnlyCertainReferencesAreRefused) {
  // Strings, comments, fields of other values, dynamic indexing, functions
  // and `$${` literals are left alone.
  ASSERT_OK(Parse(R"(name: t
inputs: {m: {default: {}}}
steps:
  - id: a
    activity: echo
    with:
      s: "${'inputs.q' .. \"vars.nope\"}"
      f: "${inputs.m.vars.inputs}"
      i: "${inputs['q']}"
      l: "$${inputs.q}"
      fn: "${(function() local vars = {nope = 1}; return vars.nope end)()}"
      c: "${1 --[[ vars.nope ]] + 2}"
      n: "${1e+5 + 2}"
)"));
}

TEST_F(WorkflowTest, StoredDefinitionsAreNotCheckedForReferences) {
  // A definition already in a store loads as it was written.
  Json canonical = Order().ToJson();
  canonical["steps"][0]["with"] = {{"text", "${inputs.q} ${vars.nope}"}};
  auto wf = Workflow::FromJson(canonical);
  EXPECT_TRUE(wf.ok()) << wf.status().ToString();
}

TEST_F(WorkflowTest, LoadWorkflowFileReportsAMissingFile) {
  auto wf = LoadWorkflowFile("/nonexistent/x.yaml");
  EXPECT_EQ(wf.status().code(), Status::Code::kIOError);
  EXPECT_HAS(wf.status().message(), "/nonexistent/x.yaml");
}

// --- Inputs -----------------------------------------------------------------------

TEST_F(WorkflowTest, ResolveInputsRefusesUndeclaredAndMissingAndFillsDefaults) {
  Workflow wf = Order();
  auto undeclared = ResolveInputs(wf, {{"order_id", "o1"}, {"extra", 1}});
  EXPECT_EQ(undeclared.status().code(), Status::Code::kInvalidArgument);
  EXPECT_HAS(undeclared.status().message(), "input 'extra' is not declared by workflow 'order'");

  auto missing = ResolveInputs(wf, {{"amount", 5}});
  EXPECT_EQ(missing.status().code(), Status::Code::kInvalidArgument);
  EXPECT_HAS(missing.status().message(), "input 'order_id' is required");
  EXPECT_FALSE(ResolveInputs(wf, {{"order_id", nullptr}}).ok()) << "null counts as missing";

  auto filled = ResolveInputs(wf, {{"order_id", "o1"}});
  ASSERT_OK(filled);
  EXPECT_EQ(*filled, Json({{"order_id", "o1"}, {"amount", 0}}));
  auto given = ResolveInputs(wf, {{"order_id", "o1"}, {"amount", 2000}});
  ASSERT_OK(given);
  EXPECT_EQ((*given)["amount"], 2000);

  EXPECT_FALSE(ResolveInputs(wf, Json::array()).ok());
  auto none = Parse("name: n\nsteps: [{id: a, activity: echo}]\n");
  ASSERT_OK(none);
  auto empty = ResolveInputs(*none, nullptr);
  ASSERT_OK(empty);
  EXPECT_EQ(*empty, Json::object());
}

// --- Builder -----------------------------------------------------------------------

TEST_F(WorkflowTest, BuilderMakesTheSameDefinitionAsTheFile) {
  auto built = WorkflowBuilder("chain")
                   .Input("x", {.required = true})
                   .Activity("a", "inc", {{"x", "${inputs.x}"}})
                   .SaveAs("v")
                   .Retry({.max_attempts = 3, .backoff_ms = 10, .multiplier = 2})
                   .Timeout(5000)
                   .Activity("b", "inc", {{"x", "${vars.v}"}})
                   .SaveAs("v")
                   .When("vars.v < 10")
                   .Goto("a", "vars.v < 5")
                   .Output("result", "vars.v")
                   .Build();
  ASSERT_OK(built);
  EXPECT_EQ(built->source, "<builder>");
  auto parsed = Parse(R"(name: chain
inputs: {x: {required: true}}
steps:
  - {id: a, activity: inc, with: {x: "${inputs.x}"}, save_as: v, timeout: 5s,
     retry: {max_attempts: 3, backoff: 10ms, multiplier: 2}}
  - {id: b, activity: inc, with: {x: "${vars.v}"}, save_as: v, when: "vars.v < 10",
     goto: {step: a, when: "vars.v < 5"}}
outputs: {result: vars.v}
)");
  ASSERT_OK(parsed);
  EXPECT_EQ(built->Hash(), parsed->Hash());
}

TEST_F(WorkflowTest, BuilderNestsStepListsAndValidatesLikeAFile) {
  auto wf =
      WorkflowBuilder("fan")
          .Parallel(
              "pack",
              {{"label", StepListBuilder().Activity("print", "echo", {{"text", "l"}}).steps()},
               {"box", StepListBuilder().Activity("fold", "echo").steps()}},
              {.kind = Join::kAtLeast, .at_least = 1})
          .ForEach("each", "vars.items", StepListBuilder().Activity("send", "echo").steps(), 2)
          .WaitSignal("paid", "pay", 1000, "done")
          .Sleep("nap", 10)
          .SleepUntil("later", "2026-12-01T00:00:00Z")
          .Approval("ok", "ship?", 3600)
          .Pause("done", "look")
          .Set("count", {{"n", "1"}})
          .Build();
  ASSERT_OK(wf);
  ASSERT_NE(wf->FindStep("fold"), nullptr);
  EXPECT_EQ(wf->FindStep("each")->concurrency, 2u);

  auto dangling = WorkflowBuilder("bad").Activity("a", "echo").OnError("nowhere").Build();
  ASSERT_FALSE(dangling.ok());
  EXPECT_HAS(dangling.status().message(), "<builder>: step 'a': on_error 'nowhere' is not a step");

  auto early = WorkflowBuilder("bad").SaveAs("x").Activity("a", "echo").Build();
  ASSERT_FALSE(early.ok());
  EXPECT_HAS(early.status().message(), "SaveAs before any step");

  auto bad_expr = WorkflowBuilder("bad").Activity("a", "echo").When("x ==").Build();
  ASSERT_FALSE(bad_expr.ok());
  EXPECT_HAS(bad_expr.status().message(), "step 'a': when: expression 'x ==' does not parse");

  Step stray;
  stray.id = "s";
  stray.kind = StepKind::kSleep;
  stray.activity = "echo";  // a field of another kind
  EXPECT_FALSE(WorkflowBuilder("bad").AddStep(stray).Build().ok());
}

// --- Hostile input -----------------------------------------------------------------

// Anchors that refer to anchors, `levels` deep with 9 uses each: 9^levels
// values from a few hundred bytes.
std::string Laughs(int levels) {
  std::string yaml = "name: lol\nvars:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= levels; ++i) {
    std::string prev = "*l" + std::to_string(i - 1);
    yaml += "  l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int k = 0; k < 9; ++k) yaml += (k ? ", " : "") + prev;
    yaml += "]\n";
  }
  return yaml + "steps:\n  - {id: a, activity: echo}\n";
}

TEST_F(WorkflowTest, AliasesThatExpandWithoutBoundAreRefusedEarly) {
  std::string yaml = Laughs(9);  // 387 million values
  ASSERT_LT(yaml.size(), 1000u);
  std::string msg = ErrorOf(yaml);
  EXPECT_HAS(msg, "wf.yaml:");
  EXPECT_HAS(msg, "the workflow expands to more than");
  EXPECT_HAS(msg, "YAML aliases");

  // The same through nested step lists: each parallel step holds the
  // anchored list of the level below nine times.
  std::string in_steps = "name: lol\nsteps:\n  - id: p\n    parallel:\n";
  in_steps += "      b0: &s0 [{id: leaf, activity: echo}]\n";
  for (int i = 1; i <= 9; ++i) {
    in_steps += "      b" + std::to_string(i) + ": &s" + std::to_string(i) + " [{id: p" +
                std::to_string(i) + ", parallel: [";
    for (int k = 0; k < 9; ++k) in_steps += (k ? ", " : "") + std::string("*s") + std::to_string(i - 1);
    in_steps += "]}]\n";
  }
  EXPECT_HAS(ErrorOf(in_steps), "the workflow expands to more than");

  // Aliases that stay small are fine: a shared retry policy.
  auto shared = Parse(
      "name: t\nsteps:\n"
      "  - {id: a, activity: echo, retry: &r {max_attempts: 3, backoff: 1s}}\n"
      "  - {id: b, activity: echo, retry: *r}\n");
  ASSERT_OK(shared);
  EXPECT_EQ(shared->steps[1].retry.max_attempts, 3u);
}

TEST_F(WorkflowTest, TextThatIsNotUtf8IsRefusedWithItsLine) {
  std::string msg = ErrorOf("name: t\nsteps:\n  - {id: a, activity: echo, with: {t: \"p\xff\"}}\n");
  EXPECT_HAS(msg, "wf.yaml:3: the workflow is not valid UTF-8");
  // Overlong forms and surrogates are not UTF-8 either.
  EXPECT_HAS(ErrorOf("name: \xc0\xaf\nsteps: []\n"), "wf.yaml:1: the workflow is not valid UTF-8");
  EXPECT_HAS(ErrorOf("name: t\xed\xa0\x80\nsteps: []\n"), "not valid UTF-8");
  // A YAML escape cannot make a surrogate either.
  EXPECT_HAS(ErrorOf("name: t\nsteps:\n  - {id: a, activity: echo, with: {t: \"\\ud800\"}}\n"),
             "wf.yaml:3: malformed YAML: invalid unicode");
  // Valid multi-byte text is kept as it is.
  auto ok = Parse("name: t\nsteps:\n  - {id: a, activity: echo, with: {t: \"gr\xc3\xbc\xc3\x9f \xf0\x9f\x91\x8b\"}}\n");
  ASSERT_OK(ok);
  EXPECT_EQ(ok->steps[0].with["t"], "gr\xc3\xbc\xc3\x9f \xf0\x9f\x91\x8b");
  ok->Hash();  // dumps as JSON without throwing

  // From C++: a built workflow with such text is refused, not stored.
  auto built = WorkflowBuilder("b").Activity("a", "echo", {{"t", "p\xff"}}).Build();
  ASSERT_FALSE(built.ok());
  EXPECT_HAS(built.status().message(), "<builder>: the workflow.steps[0].with.t is not valid UTF-8");
}

TEST_F(WorkflowTest, AWorkflowTextHasABoundedSize) {
  std::string big = "name: t\nsteps:\n  - {id: a, activity: echo}\n# " + std::string(33u << 20, 'x');
  EXPECT_HAS(ErrorOf(big), "wf.yaml: the workflow is " + std::to_string(big.size()) +
                              " bytes, more than the 33554432");
  testing::TempDir dir;
  testing::WriteFile(dir / "big.yaml", big);
  auto loaded = LoadWorkflowFile(dir / "big.yaml");
  ASSERT_FALSE(loaded.ok());
  EXPECT_HAS(loaded.status().message(), "big.yaml: the workflow is larger than the 33554432 bytes");
}

TEST(ValidateTest, ProcessIdsKeepToTheirAlphabet) {
  for (const char* good : {"p_01JF3Z6Q8V5Y2K7M9N4R1T0WXA", "order-123", "user:42:sync",
                           "job_2024.01.01", "_x", "7", "A"}) {
    EXPECT_TRUE(CheckProcessId(good).ok()) << good;
  }
  EXPECT_TRUE(CheckProcessId(std::string(128, 'a')).ok());
  for (const char* bad : {"", "a/b", "../../x", "a b\nc", ".hidden", "-rf", ":x", "p\xff",
                          "caf\xc3\xa9", "a?b", "a#b", "a%2Fb"}) {
    Status s = CheckProcessId(bad);
    EXPECT_EQ(s.code(), Status::Code::kInvalidArgument) << bad;
  }
  Status s = CheckProcessId(std::string(129, 'a'));
  EXPECT_FALSE(s.ok());
  EXPECT_HAS(CheckProcessId("a b\nc").message(), "process id 'a b\\x0Ac' is not valid");

  EXPECT_TRUE(CheckIdempotencyKey("order 42 / \xc3\xa9t\xc3\xa9").ok());
  EXPECT_FALSE(CheckIdempotencyKey("").ok());
  EXPECT_FALSE(CheckIdempotencyKey(std::string(257, 'k')).ok());
  EXPECT_FALSE(CheckIdempotencyKey("k\xff").ok());
  EXPECT_FALSE(CheckIdempotencyKey("k\n").ok());

  EXPECT_TRUE(IsUtf8("\xf4\x8f\xbf\xbf"));    // U+10FFFF
  EXPECT_FALSE(IsUtf8("\xf4\x90\x80\x80"));   // past it
  EXPECT_FALSE(IsUtf8("\xe0\x80\xaf"));       // overlong
  EXPECT_FALSE(IsUtf8("\xe2\x82"));           // cut short
  EXPECT_EQ(InvalidUtf8At("ab\xff" "c"), 2u);
  EXPECT_HAS(CheckJsonUtf8(Json({{"a", {1, "x\xff"}}}), "inputs").message(),
             "inputs.a[1] is not valid UTF-8");
}

// A long workflow loads in time linear in its steps. The time is printed, not
// asserted: the ctest timeout is the bound.
TEST_F(WorkflowTest, TwoHundredThousandStepsLoadAndValidate) {
  constexpr int kSteps = 200'000;
  std::string yaml = "name: long\ninputs: {n: {default: 1}}\nsteps:\n";
  for (int i = 0; i < kSteps; ++i) {
    std::string id = "s" + std::to_string(i);
    yaml += "  - id: " + id + "\n    activity: echo\n    with: {text: \"step ${inputs.n} " + id +
            "\"}\n    save_as: v" + std::to_string(i % 100) + "\n";
    if (i % 10 == 0) yaml += "    when: inputs.n > 0\n";
    if (i % 1000 == 999) yaml += "    goto: {step: s" + std::to_string(i - 998) + ", when: vars.v1 == nil}\n";
  }
  auto start = std::chrono::steady_clock::now();
  auto wf = Parse(yaml, "long.yaml");
  auto parsed = std::chrono::steady_clock::now();
  ASSERT_OK(wf);
  ASSERT_EQ(wf->steps.size(), static_cast<size_t>(kSteps));
  std::string hash = wf->Hash();
  auto hashed = std::chrono::steady_clock::now();
  auto again = Workflow::FromJson(wf->ToJson());
  auto reread = std::chrono::steady_clock::now();
  ASSERT_OK(again);
  EXPECT_EQ(again->Hash(), hash);
  EXPECT_NE(wf->FindStep("s199999"), nullptr);
  auto ms = [](auto a, auto b) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(b - a).count();
  };
  std::printf("%d steps (%zu bytes): parse+validate %lld ms, hash %lld ms, FromJson %lld ms\n",
              kSteps, yaml.size(), static_cast<long long>(ms(start, parsed)),
              static_cast<long long>(ms(parsed, hashed)), static_cast<long long>(ms(hashed, reread)));
}

// --- Durations, times, retry delays -------------------------------------------------

TEST(DurationTest, ParsesUnitsSumsAndFractions) {
  struct Case {
    const char* text;
    int64_t ms;
  } cases[] = {{"0", 0},         {"0s", 0},           {"200ms", 200},      {"5s", 5000},
               {"10m", 600'000}, {"24h", 86'400'000}, {"2d", 172'800'000}, {"1h30m", 5'400'000},
               {"1.5s", 1500},   {"0.25s", 250},      {"1m0.5s", 60'500},  {" 5s ", 5000},
               {".5s", 500}};
  for (const auto& c : cases) {
    auto ms = ParseDurationMs(c.text);
    ASSERT_OK(ms);
    EXPECT_EQ(*ms, c.ms) << c.text;
  }
  for (const char* bad : {"", "abc", "5", "1.5", "5 s", "5parsecs", "-1s", "1.0005s", "0.5ms",
                          "10us", "1h30", "s", "99999999999999999999h", "1e3s"}) {
    auto r = ParseDurationMs(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_HAS(r.status().message(), std::string("'") + bad + "'");
    }
  }
}

TEST(DurationTest, FormatIsShortAndReadsBack) {
  EXPECT_EQ(FormatDurationMs(0), "0s");
  EXPECT_EQ(FormatDurationMs(250), "250ms");
  EXPECT_EQ(FormatDurationMs(1500), "1.5s");
  EXPECT_EQ(FormatDurationMs(90'000), "1m30s");
  EXPECT_EQ(FormatDurationMs(86'400'000), "24h");
  EXPECT_EQ(FormatDurationMs(3'600'250), "1h0.25s");
  EXPECT_EQ(FormatDurationMs(-1500), "-1.5s");
  for (int64_t ms : {1, 999, 1000, 1001, 59'999, 60'000, 3'599'999, 3'600'000, 90'061'001}) {
    auto back = ParseDurationMs(FormatDurationMs(ms));
    ASSERT_OK(back);
    EXPECT_EQ(*back, ms) << FormatDurationMs(ms);
  }
}

TEST(DurationTest, ParsesRfc3339Times) {
  auto t = ParseTimeNs("2026-12-01T00:00:00Z");
  ASSERT_OK(t);
  EXPECT_EQ(*t, 1'796'083'200LL * 1'000'000'000);
  auto offset = ParseTimeNs("2026-12-01T01:00:00.5+01:00");
  ASSERT_OK(offset);
  EXPECT_EQ(*offset, *t + 500'000'000);
  auto space = ParseTimeNs("1970-01-01 00:00:00.000000001z");
  ASSERT_OK(space);
  EXPECT_EQ(*space, 1);
  auto before = ParseTimeNs("1969-12-31T23:59:59Z");
  ASSERT_OK(before);
  EXPECT_EQ(*before, -1'000'000'000);
  EXPECT_EQ(FormatTime(*t), "2026-12-01T00:00:00Z");
  EXPECT_EQ(FormatTime(*offset), "2026-12-01T00:00:00.5Z");
  EXPECT_EQ(FormatTimeNs(-1), "1969-12-31T23:59:59.999999999Z");
  for (const char* bad :
       {"2026-12-01", "2026-12-01T00:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "2026-12-01T24:00:00Z", "tomorrow", "2026-12-01T00:00:00Zjunk", "3000-01-01T00:00:00Z"}) {
    EXPECT_FALSE(ParseTimeNs(bad).ok()) << bad;
  }
  EXPECT_OK(ParseTimeNs("2024-02-29T00:00:00Z"));  // leap year
}

TEST(RetryPolicyTest, DelayGrowsByTheMultiplierAndIsCapped) {
  RetryPolicy p{.max_attempts = 6, .backoff_ms = 200, .multiplier = 2, .max_backoff_ms = 1000};
  EXPECT_EQ(p.DelayMs(0), 0);
  EXPECT_EQ(p.DelayMs(1), 200);
  EXPECT_EQ(p.DelayMs(2), 400);
  EXPECT_EQ(p.DelayMs(3), 800);
  EXPECT_EQ(p.DelayMs(4), 1000);
  EXPECT_EQ(p.DelayMs(50), 1000);
  RetryPolicy flat{.max_attempts = 3, .backoff_ms = 50};
  EXPECT_EQ(flat.DelayMs(1), 50);
  EXPECT_EQ(flat.DelayMs(3), 50);
  RetryPolicy uncapped{.max_attempts = 100, .backoff_ms = 1000, .multiplier = 10};
  EXPECT_EQ(uncapped.DelayMs(3), 100'000);
  EXPECT_GT(uncapped.DelayMs(90), 0) << "saturates instead of overflowing";
  RetryPolicy none;
  EXPECT_EQ(none.DelayMs(1), 0);
}

}  // namespace
}  // namespace keel
