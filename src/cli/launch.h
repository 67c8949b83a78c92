#pragma once
/// `hourglass train --nproc N`: a local launcher of data-parallel workers, as torchrun
/// --standalone --nproc-per-node N would start them.

#include <string>
#include <vector>

namespace hg::cli {

/// Runs `nproc` copies of this program as the ranks of one job on this machine: `args` (this
/// command line without its --nproc) with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
/// MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port) set. Their stdout and stderr are forwarded
/// line by line behind "[rank R] "; SIGTERM is passed on (SIGINT reaches them from the terminal).
/// Returns when all have exited; throws naming every rank that failed.
void run_local_workers(int nproc, const std::vector<std::string>& args);

/// This process's command line (from /proc/self/cmdline) without `--nproc N` / `--nproc=N`.
std::vector<std::string> command_line_without_nproc();

}  // namespace hg::cli
