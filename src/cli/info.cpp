#include "cli/cli.h"
#include "hg/io/checkpoint.h"
#include "hg/model/large_hourglass.h"
#include "hg/runtime/text.h"

#include <torch/torch.h>

#include <cstdio>
#include <iostream>
#include <memory>

namespace hg::cli {
namespace {

// What a checkpoint says of itself beyond its architecture: the joint set, the input size and
// inference defaults the predictor takes from it, and how far it was trained.
nlohmann::json checkpoint_facts(const io::LoadedModel& loaded) {
  const auto joints = infer::model_joints(loaded, loaded.source);
  const auto defaults = infer::model_defaults(loaded);
  nlohmann::json j = {{"format", io::format_name(loaded.format)},
                      {"joint_set", joints.name},
                      {"joints", joints.names},
                      {"trained_size", infer::model_input_size(loaded)},
                      {"pixel_grid", data::pixel_grid_name(infer::model_grid(loaded))},
                      {"inference", infer::inference_defaults_to_json(defaults)}};
  if (loaded.meta.contains("dataset")) j["dataset"] = loaded.meta["dataset"];
  if (loaded.meta.contains("train")) j["training"] = loaded.meta["train"];
  return j;
}

void print_facts(const nlohmann::json& f) {
  std::printf("joint set:   %s (%s)\n", f["joint_set"].get<std::string>().c_str(),
              runtime::count(int64_t(f["joints"].size()), "joint").c_str());
  std::printf("trained at:  %ld×%ld (pixel grid %s)\n", long(f["trained_size"].get<int64_t>()),
              long(f["trained_size"].get<int64_t>()), f["pixel_grid"].get<std::string>().c_str());
  std::printf(
      "inference:   flip test %s, %s decoder (the defaults of predict, eval, show, serve)\n",
      f["inference"]["flip"].get<bool>() ? "on" : "off",
      f["inference"]["decoder"].get<std::string>().c_str());
  if (f.contains("dataset"))
    std::printf("dataset:     %s\n",
                f["dataset"].is_string() ? f["dataset"].get<std::string>().c_str() : "?");
  if (!f.contains("training")) return;
  const auto& t = f["training"];
  const double best = t.value("best", -1.0);
  std::printf("training:    %s, %s%s%s\n", runtime::count(t.value("epoch", 0), "epoch").c_str(),
              runtime::count(t.value("step", 0), "step").c_str(),
              t.value("finished", false) ? " (finished)" : " (unfinished: train --resume)",
              best >= 0 ? (", best validation " + runtime::fixed(best) + " %").c_str() : "");
}

// A CornerNet/CenterNet hourglass: its shape, parameters and multiply-accumulates, computed from
// the options (Hourglass-104 need not be allocated to be described).
void print_large_hourglass(const model::LargeHourglassOptions& o, const std::string& source,
                           int64_t size, bool json) {
  o.check_input_size(size, size, "--size");
  const int64_t params = o.parameter_count();
  const int64_t macs = o.macs(size, size);
  const double gmac = macs / 1e9;
  if (json) {
    auto j = io::large_options_to_json(o);
    j["parameters"] = params;
    j["macs"] = macs;
    j["gmac"] = gmac;
    j["input"] = size;
    j["output"] = size / 4;
    std::cout << runtime::json_text(j, 2) << "\n";
    return;
  }
  std::printf("model:       %s\n", source.c_str());
  std::printf("architecture: %s\n", o.describe().c_str());
  std::printf("input:       3×%ld×%ld → %ld stacks × outputs %s of %ld×%ld\n", long(size),
              long(size), long(o.stacks()),
              o.outputs().empty() ? "(none)" : model::heads_text(o.outputs()).c_str(),
              long(size / 4), long(size / 4));
  std::printf("parameters:  %s\n", with_commas(params).c_str());
  std::printf("GMAC:        %.2f per image (%.2f GFLOP)\n", gmac, 2 * gmac);
}

// --arch (random weights: only the options are built) or a checkpoint of the family.
void describe_large_hourglass(const std::string& weights, const std::string& arch,
                              const std::string& heads, int64_t size, bool json) {
  if (weights.empty())
    return print_large_hourglass(model::large_hourglass_preset(arch, heads),
                                 arch + " (random weights)", size, json);
  const auto loaded = io::load_large_hourglass(weights);
  print_large_hourglass(loaded.model->options,
                        weights + " (" + io::format_name(loaded.format) + ")", size, json);
}

}  // namespace

void add_info_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string weights;
    int64_t size = 0;
    model::StackedHourglassOptions options;
    std::string arch, heads;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "info", "architecture, parameter count and GMACs of a model; what a checkpoint records");
  cmd->add_option("--weights,-w", args->weights,
                  "a checkpoint (native, posenet, bearpaw, centernet, cornernet or mmpose)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--size", args->size,
                  "input side in pixels (default: the checkpoint's training size, else 256)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", args->json, "print JSON instead of text");
  auto* arch =
      cmd->add_option(
             "--arch", args->arch,
             "a CornerNet/CenterNet hourglass instead of Newell's network (default size 512)")
          ->check(CLI::IsMember(model::large_hourglass_presets()));
  cmd->add_option("--heads", args->heads,
                  "with --arch: NAME:CHANNELS,... or a head set (ctdet, multi_pose, cornernet); "
                  "default ctdet for hourglass104, MMPose's heatmaps:17 for hourglass52, "
                  "cornernet for cornernet")
      ->needs(arch);
  add_architecture_options(*cmd, args->options);
  // Newell's shape flags describe another network: with --arch they are a usage error.
  for (auto* o : cmd->get_option_group("architecture")->get_options()) arch->excludes(o);
  cmd->callback([args, &global] {
    apply_threads(global);
    if (!args->arch.empty() || (!args->weights.empty() && io::holds_large_hourglass(args->weights)))
      return describe_large_hourglass(args->weights, args->arch, args->heads,
                                      args->size > 0 ? args->size : 512, args->json);
    model::StackedHourglass net{nullptr};
    std::string source = "(random weights)";
    nlohmann::json facts;
    int64_t size = args->size > 0 ? args->size : 256;
    if (!args->weights.empty()) {
      auto loaded = io::load_model(args->weights);
      net = loaded.model;
      source = args->weights + " (" + io::format_name(loaded.format) + ")";
      facts = checkpoint_facts(loaded);
      if (args->size == 0) size = facts["trained_size"].get<int64_t>();
    } else {
      net = model::StackedHourglass(args->options);
    }
    net->options.check_input_size(size, size, "--size");
    const int64_t params = net->parameter_count();
    const double gmac = net->macs(size, size) / 1e9;
    if (args->json) {
      nlohmann::json j = io::options_to_json(net->options);
      j["parameters"] = params;
      j["gmac"] = gmac;
      j["input"] = size;
      j["heatmap"] = size / 4;
      if (!facts.is_null()) j["checkpoint"] = facts;
      std::cout << runtime::json_text(j, 2) << "\n";
      return;
    }
    std::printf("model:       %s\n", source.c_str());
    std::printf("architecture: %s\n", net->options.describe().c_str());
    std::printf("input:       3×%ld×%ld → %ld stacks × %ld heatmaps of %ld×%ld\n", long(size),
                long(size), long(net->options.stacks()), long(net->options.joints()),
                long(size / 4), long(size / 4));
    std::printf("parameters:  %s\n", with_commas(params).c_str());
    std::printf("GMAC:        %.2f per image (%.2f GFLOP)\n", gmac, 2 * gmac);
    if (!facts.is_null()) print_facts(facts);
  });
}

}  // namespace hg::cli
