#include "cli/cli.h"
#include "hg/data/readers.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"

#include <iostream>
#include <memory>

namespace hg::cli {
namespace {

// A CornerNet/CenterNet hourglass: its weights and architecture, and where they came from.
void convert_large_hourglass(const std::string& src, const std::string& dst) {
  auto loaded = io::load_large_hourglass(src);
  auto meta = loaded.meta;
  meta["converted_from"] = {{"path", src}, {"format", io::format_name(loaded.format)}};
  io::save_large_hourglass(dst, *loaded.model, meta);
  std::cout << "wrote " << dst << ": " << loaded.model->options.describe() << ", "
            << runtime::count(loaded.model->parameter_count(), "parameter") << " (from "
            << io::format_name(loaded.format) << ")\n";
}

}  // namespace

void add_convert_command(CLI::App& app, const GlobalOptions& global) {
  struct Args {
    std::string src, dst;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "convert",
      "convert a checkpoint (native, posenet, bearpaw or centernet) into a native checkpoint");
  cmd->add_option("SRC,--weights,-w", args->src, "checkpoint to read (positional or --weights)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("DST,--output,-o", args->dst,
                  "native checkpoint to write (positional or --output)")
      ->required();
  cmd->callback([args, &global] {
    apply_threads(global);
    if (io::holds_large_hourglass(args->src)) return convert_large_hourglass(args->src, args->dst);
    auto loaded = io::load_model(args->src);
    auto meta = infer::deployment_meta(loaded, args->src);
    meta["converted_from"] = {{"path", args->src}, {"format", io::format_name(loaded.format)}};
    io::save_model(args->dst, *loaded.model, meta);
    std::cout << "wrote " << args->dst << ": " << loaded.model->options.describe() << ", "
              << runtime::count(loaded.model->parameter_count(), "parameter") << " (from "
              << io::format_name(loaded.format) << ")\n";
  });
}

}  // namespace hg::cli
