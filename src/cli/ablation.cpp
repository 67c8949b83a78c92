#include "hg/train/ablation.h"
#include "cli/cli.h"

#include <iostream>
#include <memory>

namespace hg::cli {

void add_ablation_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::vector<int64_t> stacks = {2, 4, 8};
    std::string recipe = "demo", dataset, test = "synthetic:500:3", out = "ablation";
    int64_t features = 0, size = 0, steps = 0;
    double minutes = 0;
    std::vector<std::string> sets;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "ablation",
      "the paper's stacking experiment (Fig. 9): models of several stack counts with matched "
      "parameters, trained alike, every stack scored on held-out people");
  cmd->add_option("--stacks", args->stacks, "stack counts compared")
      ->delimiter(',')
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--features", args->features,
                  "channels inside the hourglasses (default: the "
                  "recipe's)")
      ->check(CLI::Range(2, 1024));
  cmd->add_option("--size", args->size, "network input side (default: the recipe's)")
      ->check(CLI::Range(16, 1024));
  auto* steps = cmd->add_option("--steps", args->steps, "optimizer steps for every model")
                    ->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  cmd->add_option("--minutes", args->minutes,
                  "training minutes per model, turned into one step count by timing each model")
      ->check(CLI::Range(0.01, 7 * 24 * 60.0))
      ->excludes(steps);
  cmd->add_option("--dataset", args->dataset, "training data (default: the recipe's)");
  cmd->add_option("--test", args->test, "held-out people scored after training")
      ->capture_default_str();
  cmd->add_option("--recipe", args->recipe, "training recipe every model shares")
      ->capture_default_str();
  cmd->add_option("--set", args->sets, "override a training config key (see hourglass train)");
  cmd->add_option("--out", args->out, "the experiment's folder (an interrupted run continues)")
      ->capture_default_str();
  cmd->callback([args, &global] {
    train::AblationOptions o;
    o.stacks = args->stacks;
    o.recipe = as_usage([&] { return train::preset(args->recipe); });
    if (args->features > 0) o.recipe.model.features(args->features);
    if (args->size > 0) o.recipe.input_size = args->size;
    if (!args->dataset.empty()) o.recipe.dataset = args->dataset;
    if (global.threads > 0) o.recipe.threads = global.threads;
    for (const auto& s : args->sets) as_usage([&] { o.recipe.set(s); });
    TORCH_CHECK(args->steps > 0 || args->minutes > 0, "give the budget: --steps K or --minutes M");
    o.steps = args->steps;
    o.minutes = args->minutes;
    o.test_dataset = args->test;
    o.threads = global.threads;
    o.out = args->out;
    const auto result = train::run_ablation(o);
    std::cout << "\n"
              << (result.metric == "pckh" ? "PCKh" : "PCK") << "@0.5 after " << result.steps
              << " steps (halfway / final):\n";
    for (const auto& e : result.entries) {
      const int64_t s = e.model.stacks;
      std::cout << "  " << s << (s == 1 ? " stack  x " : " stacks x ") << e.model.residuals << ": "
                << runtime::fixed(e.halfway()) << " / " << runtime::fixed(e.at_05.back().mean)
                << " %\n";
    }
    std::cout << "report: " << args->out << "/report.md\n";
  });
}

}  // namespace hg::cli
