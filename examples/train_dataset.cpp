// Trains a small model on a dataset, then scores every stack on it.
//   train_dataset DATASET RUN_DIR [key=value ...]
// DATASET: an annotation file (MPII/FLIC .h5, COCO or hourglass-pose .json) or synthetic:N:SEED;
// key=value: any training setting, as `hourglass train --set` takes it (e.g. max_steps=100).
#include <hg/hourglass.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: train_dataset DATASET RUN_DIR [key=value ...]\n";
    return 2;
  }
  try {
    auto config = hg::train::preset("cpu");  // 2 stacks at 128 px: minutes on a laptop
    config.dataset = argv[1];
    config.val_dataset = "";
    for (int i = 3; i < argc; ++i) config.set(argv[i]);
    const auto result = hg::train::Trainer(config, argv[2]).run();
    const std::string model = std::string(argv[2]) + "/last.hg";
    std::cout << "trained " << result.step << " steps in " << result.seconds << " s: " << model
              << "\n";

    // The checkpoint's own inference defaults (flip test, decoder), as `hourglass eval` uses.
    const auto predictor = hg::infer::Predictor::load(model);
    const auto dataset = hg::data::open_dataset(config.dataset, config.images);
    const auto errors = hg::eval::stack_errors(hg::eval::predict_dataset(predictor, dataset));
    const auto metric = hg::eval::metric_for(dataset->joints());  // PCKh@0.5 for MPII
    const double threshold = metric.thresholds[0];
    for (size_t s = 0; s < errors.size(); ++s)
      std::cout << "stack " << s + 1 << ": " << hg::eval::metric_label(metric, threshold) << " "
                << hg::eval::pck_table(errors[s], dataset->joints(), threshold).mean << "%\n";
  } catch (const c10::Error& e) {
    std::cerr << "train_dataset: " << e.what_without_backtrace() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "train_dataset: " << e.what() << "\n";
    return 1;
  }
}
