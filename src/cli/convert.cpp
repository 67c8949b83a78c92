#include "cli/cli.h"
#include "hg/data/readers.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"

#include <iostream>
#include <memory>

namespace hg::cli {

void add_convert_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string src, dst;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "convert", "convert a checkpoint (native, posenet or bearpaw) into a native checkpoint");
  cmd->add_option("SRC,--weights,-w", args->src, "checkpoint to read (positional or --weights)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("DST,--output,-o", args->dst,
                  "native checkpoint to write (positional or --output)")
      ->required();
  cmd->callback([args, &global] {
    apply_threads(global);
    auto loaded = io::load_model(args->src);
    nlohmann::json meta = loaded.meta;
    meta["converted_from"] = {{"path", args->src}, {"format", io::format_name(loaded.format)}};
    // What the source implied by its format travels explicitly, so the converted model predicts
    // alike: its joint set, pixel grid and input size.
    meta["joints"] = data::joint_set_to_json(infer::model_joints(loaded, args->src));
    meta["pixel_grid"] = data::pixel_grid_name(infer::model_grid(loaded));
    meta["input_size"] = infer::model_input_size(loaded);
    meta["inference"] = infer::inference_defaults_to_json(infer::model_defaults(loaded));
    io::save_model(args->dst, *loaded.model, meta);
    std::cout << "wrote " << args->dst << ": " << loaded.model->options.describe() << ", "
              << runtime::count(loaded.model->parameter_count(), "parameter") << " (from "
              << io::format_name(loaded.format) << ")\n";
  });
}

}  // namespace hg::cli
