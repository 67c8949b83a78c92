#include "cli/cli.h"

#include "hg/runtime/runtime.h"

#include <c10/util/Exception.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
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

namespace {

// The first argument that is not an option or the value of the global --threads: the command.
std::string command_word(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" || a == "-t") {
      ++i;
      continue;
    }
    if (!a.empty() && a[0] != '-') return a;
  }
  return "";
}

// A usage error (CLI11's parse errors): one line naming the command and what to run for help,
// exit code 2. An unknown command gets the nearest one suggested.
int usage_error(const CLI::App& app, const CLI::ParseError& e, int argc, char** argv) {
  const auto parsed = app.get_subcommands();
  std::string message = e.what();
  if (parsed.empty()) {
    const std::string word = command_word(argc, argv);
    std::vector<std::string> names;
    for (const auto* sub : app.get_subcommands([](const CLI::App*) { return true; }))
      names.push_back(sub->get_name());
    if (!word.empty() && std::find(names.begin(), names.end(), word) == names.end())
      message = "unknown command '" + word + "'" + runtime::did_you_mean(word, names);
    std::cerr << "hourglass: error: " << message << " (hourglass --help lists the commands)\n";
    return 2;
  }
  const std::string name = parsed.back()->get_name();
  std::cerr << "hourglass: error: " << name << ": " << message << " (hourglass " << name
            << " --help)\n";
  return 2;
}

// Every option that takes a real number refuses NaN and infinities (CLI11's Range and
// PositiveNumber let "nan" through: every comparison with it is false).
void require_finite_numbers(CLI::App& app) {
  static const CLI::Validator finite(
      [](std::string& text) {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (end != text.c_str() && !std::isfinite(v)) return text + " is not a finite number";
        return std::string();
      },
      "", "finite");
  for (CLI::Option* o : app.get_options())
    if (o->get_type_name().find("FLOAT") != std::string::npos) o->check(finite);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    require_finite_numbers(*sub);
}

}  // namespace

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
  require_finite_numbers(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return usage_error(app, e, argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "hourglass: error: " << e.what() << "\n";
    return 2;
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
