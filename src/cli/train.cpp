#include "cli/cli.h"
#include "cli/launch.h"
#include "hg/data/json.h"
#include "hg/train/trainer.h"

#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <memory>

namespace hg::cli {
namespace {

// `train --list-keys`: the config's one table of keys (train::config_keys), as a table.
void print_config_keys() {
  const auto keys = train::config_keys();
  size_t name_w = 0, type_w = 0, value_w = 0;
  for (const auto& k : keys) {
    name_w = std::max(name_w, k.name.size());
    type_w = std::max(type_w, k.type.size());
    value_w = std::max(value_w, std::min<size_t>(k.default_value.size(), 20));
  }
  std::cout << "config keys (--set KEY=VALUE; a recipe changes some defaults: "
               "hourglass train --recipe R writes them to RUN/config.json)\n";
  for (const auto& k : keys)
    std::cout << "  " << std::left << std::setw(int(name_w)) << k.name << "  "
              << std::setw(int(type_w)) << k.type << "  " << std::setw(int(value_w))
              << k.default_value << "  " << k.meaning << "\n";
}

}  // namespace

void add_train_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string recipe = "cpu", config_file, run_dir = "runs/train", resume;
    std::vector<std::string> sets;
    int nproc = 1;
    bool list_keys = false, overwrite = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("train", "train a stacked hourglass network");
  cmd->add_option("--recipe", args->recipe, "starting config: paper, original, cpu, demo or coco")
      ->capture_default_str();
  cmd->add_option("--config", args->config_file, "JSON config read over the recipe")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", args->sets,
                  "override a config key, e.g. --set epochs=20 --set model.stacks=4 "
                  "--set dataset=data/mpii/annot/train.h5 (--list-keys lists every key)");
  cmd->add_flag("--list-keys", args->list_keys,
                "list every config key with its type, default and meaning, then exit");
  cmd->add_option("--run-dir", args->run_dir, "where checkpoints and logs go")
      ->capture_default_str();
  auto* overwrite =
      cmd->add_flag("--overwrite", args->overwrite,
                    "start over in a run folder that already holds a run (its checkpoints, log and "
                    "config are replaced); without it such a folder is refused");
  cmd->add_option("--resume", args->resume,
                  "continue the run in this folder (its config, plus --set)")
      ->excludes(overwrite);
  cmd->add_option("--nproc", args->nproc,
                  "start this many data-parallel workers on this machine (Gloo on 127.0.0.1); "
                  "batch_size stays the global batch. Under torchrun or srun leave it out")
      ->check(CLI::PositiveNumber);
  cmd->callback([args, &global] {
    if (args->list_keys) return print_config_keys();
    if (args->nproc > 1) {
      TORCH_CHECK(std::getenv("RANK") == nullptr,
                  "--nproc starts its own workers, but RANK is set (a torchrun or PyTorchJob "
                  "launch): leave --nproc out there");
      run_local_workers(args->nproc, command_line_without_nproc());
      return;
    }
    auto trainer = [&] {
      if (!args->resume.empty()) return train::Trainer::resume(args->resume, args->sets);
      auto config = as_usage([&] { return train::preset(args->recipe); });
      if (!args->config_file.empty()) {
        config.merge(data::read_json_file(args->config_file));
      }
      for (const auto& s : args->sets) as_usage([&] { config.set(s); });
      if (global.threads > 0) config.threads = global.threads;
      return train::Trainer(
          config, args->run_dir,
          args->overwrite ? train::ExistingRun::kOverwrite : train::ExistingRun::kRefuse);
    }();
    const auto result = trainer.run();
    std::cout << (result.outcome == train::Outcome::kFinished ? "finished" : "stopped") << " after "
              << runtime::count(result.epoch, "epoch") << ", "
              << runtime::count(result.step, "step") << " in " << runtime::fixed(result.seconds)
              << " s; "
              << (result.best >= 0 ? "best validation " + result.metric + " " +
                                         runtime::fixed(result.best) + " %"
                                   : std::string("no validation yet"))
              << "; checkpoints in " << trainer.run_dir() << "\n";
  });
}

}  // namespace hg::cli
