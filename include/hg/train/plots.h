#pragma once
/// The curves of a training run, drawn from its log.jsonl (the trainer writes them at every
/// validation; `hourglass demo` into its report).

#include <string>

namespace hg::train {

/// Reads `run_dir`/log.jsonl and writes into `out_dir`: loss.png (every stack's training loss,
/// log10 of the mean over 25 steps, beside the learning rate of every step) and validation.png
/// (the validation metric of every stack per epoch, as the log names it: "val_pckh@0.5" is
/// drawn as PCKh@0.5). A plot with fewer than two points is not written. Lines that are not
/// JSON are skipped.
void plot_training(const std::string& run_dir, const std::string& out_dir);

}  // namespace hg::train
