#pragma once
/// The `hourglass` command-line tool. Each subcommand lives in its own file under src/cli/ and
/// registers itself through one of the add_*_command functions below.

#include <CLI/CLI.hpp>

#include "hg/model/hourglass.h"

#include <functional>
#include <string>

namespace hg::cli {

/// Runs the tool: parses argv, runs the chosen subcommand and returns the exit code. Errors are
/// printed as one line on stderr ("hourglass: error: ...") with exit code 1.
int run(int argc, char** argv);

/// Options every subcommand shares.
struct GlobalOptions {
  int threads = 0;  ///< 0 = as many as the machine has cores
};

/// Registers architecture flags (--stacks, --features, ...) that fill `options`.
void add_architecture_options(CLI::App& cmd, model::StackedHourglassOptions& options);

/// Each registers a subcommand on `app`; its callback does the work.
void add_info_command(CLI::App& app, const GlobalOptions& global);
void add_convert_command(CLI::App& app, const GlobalOptions& global);
void add_forward_command(CLI::App& app, const GlobalOptions& global);
void add_bench_command(CLI::App& app, const GlobalOptions& global);

/// Sets LibTorch's intra-op thread count (0 = cores); Debian's LibTorch starts with one.
void apply_threads(const GlobalOptions& global);

/// 1234567 -> "1,234,567".
std::string with_commas(int64_t n);

}  // namespace hg::cli
