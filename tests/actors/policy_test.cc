// Policy gates: glob matching, first match wins, the exec policy first.

#include "actors/policy.h"

#include <gtest/gtest.h>

namespace keel::actors {
namespace {

using Decision = PolicyRule::Decision;

Step ActivityStep(std::string id, std::string activity) {
  Step s;
  s.id = std::move(id);
  s.activity = std::move(activity);
  return s;
}

TEST(GlobMatchTest, StarMatchesAnyRunIncludingNone) {
  EXPECT_TRUE(GlobMatch("https://*", "https://example.com/x"));
  EXPECT_TRUE(GlobMatch("https://*", "https://"));
  EXPECT_FALSE(GlobMatch("https://*", "http://example.com"));
  EXPECT_TRUE(GlobMatch("*.internal/*", "api.internal/v1"));
  EXPECT_TRUE(GlobMatch("a*b*c", "aXbYbZc"));
  EXPECT_FALSE(GlobMatch("a*b*c", "aXbYbZ"));
  EXPECT_TRUE(GlobMatch("*", ""));
  EXPECT_TRUE(GlobMatch("exact", "exact"));
  EXPECT_FALSE(GlobMatch("exact", "exactly"));
}

TEST(GatesTest, FirstMatchingRuleDecidesAndNamesItself) {
  Options o;
  o.policy = {
      {"block-https", {{"activity", "http"}, {"with.url", "https://*"}}, Decision::kBlock},
      {"ask-http", {{"activity", "http"}}, Decision::kRequireApproval},
  };
  Gates gates(o);
  Step http = ActivityStep("get", "http");
  GateDecision blocked = gates.Check("wf", http, {{"url", "https://a"}});
  EXPECT_EQ(blocked.decision, Decision::kBlock);
  EXPECT_EQ(blocked.rule, "block-https");
  EXPECT_NE(blocked.reason.find("block-https"), std::string::npos);
  GateDecision ask = gates.Check("wf", http, {{"url", "http://a"}});
  EXPECT_EQ(ask.decision, Decision::kRequireApproval);
  EXPECT_EQ(ask.rule, "ask-http");
  GateDecision none = gates.Check("wf", ActivityStep("e", "echo"), Json::object());
  EXPECT_EQ(none.decision, Decision::kAllow);
  EXPECT_EQ(none.rule, "");
}

TEST(GatesTest, NestedWithPathsAndMissingFieldsDoNotMatch) {
  Options o;
  o.policy = {{"deep", {{"with.headers.host", "prod*"}}, Decision::kBlock}};
  Gates gates(o);
  Step s = ActivityStep("x", "http");
  EXPECT_EQ(gates.Check("wf", s, {{"headers", {{"host", "prod-1"}}}}).decision, Decision::kBlock);
  EXPECT_EQ(gates.Check("wf", s, {{"headers", {{"host", "dev"}}}}).decision, Decision::kAllow);
  EXPECT_EQ(gates.Check("wf", s, Json::object()).decision, Decision::kAllow);
}

TEST(GatesTest, TheExecPolicyComesBeforeTheRules) {
  Options o;
  o.exec_policy = ExecPolicy::kAllowlist;
  o.exec_allow = {"ls"};
  o.policy = {{"all-exec", {{"activity", "exec"}}, Decision::kAllow}};
  Gates gates(o);
  Step exec = ActivityStep("run", "exec");
  GateDecision denied = gates.Check("wf", exec, {{"argv", {"rm", "-rf", "/"}}});
  EXPECT_EQ(denied.decision, Decision::kBlock);
  EXPECT_EQ(denied.rule, "exec_policy");
  EXPECT_NE(denied.reason.find("'rm'"), std::string::npos);
  EXPECT_EQ(gates.Check("wf", exec, {{"argv", {"ls"}}}).rule, "all-exec");
  o.exec_policy = ExecPolicy::kDeny;
  EXPECT_EQ(Gates(o).Check("wf", exec, {{"argv", {"ls"}}}).decision, Decision::kBlock);
}

}  // namespace
}  // namespace keel::actors
