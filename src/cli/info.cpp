#include "hg/cli/cli.h"
#include "hg/io/checkpoint.h"

#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <memory>

namespace hg::cli {

void add_info_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string weights;
    int64_t size = 256;
    model::StackedHourglassOptions options;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand("info", "architecture, parameter count and GMACs of a model");
  cmd->add_option("--weights,-w", args->weights, "a checkpoint (native, posenet or bearpaw)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--size", args->size, "input side in pixels")->capture_default_str();
  cmd->add_flag("--json", args->json, "print JSON instead of text");
  add_architecture_options(*cmd, args->options);
  cmd->callback([args, &global] {
    apply_threads(global);
    model::StackedHourglass net{nullptr};
    std::string source = "(random weights)";
    if (!args->weights.empty()) {
      auto loaded = io::load_model(args->weights);
      net = loaded.model;
      source = args->weights + " (" + io::format_name(loaded.format) + ")";
    } else {
      net = model::StackedHourglass(args->options);
    }
    net->options.check_input_size(args->size, args->size, "--size");
    const int64_t params = net->parameter_count();
    const double gmac = net->macs(args->size, args->size) / 1e9;
    if (args->json) {
      nlohmann::json j = io::options_to_json(net->options);
      j["parameters"] = params;
      j["gmac"] = gmac;
      j["input"] = args->size;
      j["heatmap"] = args->size / 4;
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("model:       %s\n", source.c_str());
    std::printf("architecture: %s\n", net->options.describe().c_str());
    std::printf("input:       3×%ld×%ld → %ld stacks × %ld heatmaps of %ld×%ld\n", long(args->size),
                long(args->size), long(net->options.stacks()), long(net->options.joints()),
                long(args->size / 4), long(args->size / 4));
    std::printf("parameters:  %s\n", with_commas(params).c_str());
    std::printf("GMAC:        %.2f per image (%.2f GFLOP)\n", gmac, 2 * gmac);
  });
}

}  // namespace hg::cli
