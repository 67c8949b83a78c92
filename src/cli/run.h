#pragma once
/// The `hourglass` tool's entry point, all that apps/hourglass needs of the CLI layer.

namespace hg::cli {

/// Runs the tool: parses argv, runs the chosen subcommand and returns the exit code. Every error
/// is one line on stderr ("hourglass: error: ..."); usage errors exit 2, the others 1.
int run(int argc, char** argv);

}  // namespace hg::cli
