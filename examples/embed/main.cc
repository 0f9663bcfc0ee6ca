// Embeds a keel node, registers a C++ activity and runs a workflow built in
// C++ that uses it: chain(x) = inc(inc(inc(x))). Exits 0 when the result is
// x + 3. Usage: embed_example [DATA_DIR]
#include <filesystem>
#include <iostream>

#include "keel/node.h"

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "/tmp/keel-embed-example";
  std::filesystem::remove_all(dir);

  keel::Options options;
  options.data_dir = dir;
  auto node = keel::Node::Open(options);
  if (!node.ok()) {
    std::cerr << "open: " << node.status().ToString() << "\n";
    return 1;
  }
  // A durable step: its result is in the log before the next step starts.
  auto status = (*node)->RegisterActivity("inc", [](const keel::ActivityContext& ctx) {
    return keel::ActivityResult::Ok(ctx.input["x"].get<int64_t>() + 1);
  });
  if (!status.ok()) return 1;

  auto workflow = keel::WorkflowBuilder("chain")
                      .Input("x", {.required = true})
                      .Activity("a", "inc", {{"x", "${inputs.x}"}})
                      .SaveAs("v")
                      .Activity("b", "inc", {{"x", "${vars.v}"}})
                      .SaveAs("v")
                      .Activity("c", "inc", {{"x", "${vars.v}"}})
                      .SaveAs("v")
                      .Output("result", "vars.v")
                      .Build();
  if (!workflow.ok()) {
    std::cerr << "workflow: " << workflow.status().ToString() << "\n";
    return 1;
  }
  auto started = (*node)->Start(*workflow, {{"x", 39}});
  if (!started.ok()) {
    std::cerr << "start: " << started.status().ToString() << "\n";
    return 1;
  }
  auto done = (*node)->Wait((*started)["id"], std::chrono::seconds(60));
  if (!done.ok()) {
    std::cerr << "wait: " << done.status().ToString() << "\n";
    return 1;
  }
  std::cout << "process " << (*done)["id"].get<std::string>() << " "
            << (*done)["status"].get<std::string>() << ", result = " << (*done)["outputs"]["result"]
            << "\n";
  return (*done)["outputs"]["result"] == 42 ? 0 : 1;
}
