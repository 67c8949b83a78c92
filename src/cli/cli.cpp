#include "hg/cli/cli.h"

#include "hg/runtime/runtime.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <csignal>
#include <iostream>

namespace hg::cli {

void add_architecture_options(CLI::App& cmd, model::StackedHourglassOptions& o) {
  auto* g = cmd.add_option_group("architecture", "network shape (ignored with --weights)");
  g->add_option_function<int64_t>(
       "--stacks", [&o](int64_t v) { o.stacks(v); }, "hourglass stacks (1..16)")
      ->default_str(std::to_string(o.stacks()));
  g->add_option_function<int64_t>(
       "--features", [&o](int64_t v) { o.features(v); }, "channels inside the hourglasses (F)")
      ->default_str(std::to_string(o.features()));
  g->add_option_function<int64_t>(
       "--depth", [&o](int64_t v) { o.depth(v); }, "levels per hourglass")
      ->default_str(std::to_string(o.depth()));
  g->add_option_function<int64_t>(
       "--residuals", [&o](int64_t v) { o.residuals(v); }, "residual modules per block (nModules)")
      ->default_str(std::to_string(o.residuals()));
  g->add_option_function<int64_t>(
       "--joints", [&o](int64_t v) { o.joints(v); }, "heatmaps per stack")
      ->default_str(std::to_string(o.joints()));
  g->add_option_function<int64_t>(
       "--stem1", [&o](int64_t v) { o.stem1(v); }, "width after the stem's first residual")
      ->default_str(std::to_string(o.stem1()));
  g->add_option_function<int64_t>(
       "--stem2", [&o](int64_t v) { o.stem2(v); }, "width after the stem's second residual")
      ->default_str(std::to_string(o.stem2()));
}

void apply_threads(const GlobalOptions& global) {
  runtime::apply_threads(global.threads);
}

int run(int argc, char** argv) {
  // A write past a file-size limit (ulimit -f) then fails like a full disk, with a message naming
  // the file, instead of killing the process.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"hourglass: stacked hourglass networks for human pose estimation"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hourglass 0.1.0");
  app.fallthrough();
  GlobalOptions global;
  app.add_option("--threads,-t", global.threads, "CPU threads (0 = all cores)")
      ->check(CLI::NonNegativeNumber);
  add_info_command(app, global);
  add_convert_command(app, global);
  add_forward_command(app, global);
  add_train_command(app, global);
  add_demo_command(app, global);
  add_data_command(app, global);
  add_predict_command(app, global);
  add_eval_command(app, global);
  add_show_command(app, global);
  add_bench_command(app, global);
  add_export_command(app, global);
  add_serve_command(app, global);
  add_ablation_command(app, global);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const c10::Error& e) {
    std::cerr << "hourglass: error: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "hourglass: error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace hg::cli
