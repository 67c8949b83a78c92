#include "hg/cli/cli.h"
#include "hg/cli/launch.h"
#include "hg/data/json.h"
#include "hg/train/trainer.h"

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>

namespace hg::cli {

void add_train_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string recipe = "cpu", config_file, run_dir = "runs/train", resume;
    std::vector<std::string> sets;
    int nproc = 1;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("train", "train a stacked hourglass network");
  cmd->add_option("--recipe", args->recipe, "starting config: paper, original, cpu, demo or coco")
      ->capture_default_str();
  cmd->add_option("--config", args->config_file, "JSON config read over the recipe")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", args->sets,
                  "override a config key, e.g. --set epochs=20 --set model.stacks=4 "
                  "--set dataset=data/mpii/annot/train.h5");
  cmd->add_option("--run-dir", args->run_dir, "where checkpoints and logs go")
      ->capture_default_str();
  cmd->add_option("--resume", args->resume,
                  "continue the run in this folder (its config, plus --set)");
  cmd->add_option("--nproc", args->nproc,
                  "start this many data-parallel workers on this machine (Gloo on 127.0.0.1); "
                  "batch_size stays the global batch. Under torchrun or srun leave it out")
      ->check(CLI::PositiveNumber);
  cmd->callback([args, &global] {
    if (args->nproc > 1) {
      TORCH_CHECK(std::getenv("RANK") == nullptr,
                  "--nproc starts its own workers, but RANK is set (a torchrun or PyTorchJob "
                  "launch): leave --nproc out there");
      run_local_workers(args->nproc, command_line_without_nproc());
      return;
    }
    auto trainer = [&] {
      if (!args->resume.empty()) return train::Trainer::resume(args->resume, args->sets);
      auto config = train::preset(args->recipe);
      if (!args->config_file.empty()) {
        config.merge(data::read_json_file(args->config_file));
      }
      for (const auto& s : args->sets) config.set(s);
      if (global.threads > 0) config.threads = global.threads;
      return train::Trainer(config, args->run_dir);
    }();
    const auto result = trainer.run();
    std::cout << (result.outcome == train::Outcome::kFinished ? "finished" : "stopped") << " after "
              << result.epoch << " epochs, " << result.step << " steps in " << result.seconds
              << " s; "
              << (result.best >= 0 ? "best validation PCK@0.5 " + std::to_string(result.best)
                                   : std::string("no validation yet"))
              << "; checkpoints in " << trainer.run_dir() << "\n";
  });
}

}  // namespace hg::cli
