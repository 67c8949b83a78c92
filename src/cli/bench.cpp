#include "hg/infer/bench.h"
#include "cli/cli.h"
#include "hg/io/atomic_file.h"
#include "hg/model/large_hourglass.h"
#include "hg/runtime/text.h"

#include <cstdio>
#include <memory>

namespace hg::cli {

void add_bench_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string json;
    infer::BenchOptions bench;
    bool no_torch = false;
  };
  auto args = std::make_shared<Args>();
  auto& o = args->bench;
  auto* cmd = app.add_subcommand(
      "bench",
      "forward latency (batch 1) and throughput of the engine's modes and of LibTorch, measured "
      "in turns, on either family");
  cmd->add_option("--weights,-w", o.weights, "a checkpoint (default: random weights)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--size", o.size, "input side in pixels")->capture_default_str();
  cmd->add_option("--batch", o.batch, "batch of the throughput measurement")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--runs", o.runs, "timed runs per configuration (the median is reported)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--no-torch", args->no_torch, "skip the LibTorch measurements");
  cmd->add_option("--modes", o.modes, "engine modes to measure (precision-algorithm)")
      ->capture_default_str()
      ->check(CLI::IsMember(infer::bench_mode_names()));
  cmd->add_flag("--profile", o.profile,
                "also time every step of each engine mode at batch 1 and print the time per kind "
                "of step (slowest first)");
  cmd->add_option("--json", args->json, "also write the results to this JSON file");
  auto* weights = cmd->get_option("--weights");
  auto* arch = cmd->add_option("--arch", o.arch,
                               "a CornerNet/CenterNet hourglass with random weights instead of "
                               "Newell's network")
                   ->check(CLI::IsMember(model::large_hourglass_presets()))
                   ->excludes(weights);
  cmd->add_option("--heads", o.heads,
                  "with --arch: NAME:CHANNELS,... or a head set (ctdet, multi_pose, cornernet); "
                  "default ctdet for hourglass104, MMPose's heatmaps:17 for hourglass52, "
                  "cornernet for cornernet")
      ->needs(arch);
  add_architecture_options(*cmd, o.architecture);
  // Newell's shape flags describe another network: with --arch they are a usage error.
  for (auto* option : cmd->get_option_group("architecture")->get_options()) arch->excludes(option);
  cmd->callback([args, &global] {
    apply_threads(global);
    auto options = args->bench;
    options.torch = !args->no_torch;
    options.threads = global.threads;
    options.progress = [](const std::string& text) {
      std::fputs(text.c_str(), stdout);
      std::fflush(stdout);
    };
    const auto result = infer::run_bench(options);
    std::fputs(infer::format_bench_summary(result).c_str(), stdout);
    if (!args->json.empty())
      io::write_file_atomic(args->json, runtime::json_text(infer::bench_to_json(result), 2) + "\n");
  });
}

}  // namespace hg::cli
