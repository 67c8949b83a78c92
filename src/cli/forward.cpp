#include "cli/cli.h"
#include "hg/engine/engine.h"
#include "hg/infer/center_decode.h"
#include "hg/infer/predictor.h"
#include "hg/io/checkpoint.h"
#include "hg/io/progress.h"
#include "hg/io/torch_file.h"

#include <torch/torch.h>

#include <malloc.h>

#include <chrono>
#include <iostream>
#include <map>
#include <memory>

namespace hg::cli {
namespace {

at::Tensor read_input(const std::string& path) {
  const auto root = io::read_torch_file(path);
  const io::PyValue* v = root.get();
  if (root->is_dict()) {
    v = root->find("input");
    TORCH_CHECK(v != nullptr, "cannot read ", path,
                ": the dict has no key 'input' (keys: ", c10::Join(", ", root->string_keys()), ")");
  }
  TORCH_CHECK(v->kind == io::PyValue::Kind::kTensor, "cannot read ", path,
              ": expected a tensor under 'input', found a ", v->type_name());
  return v->tensor;
}

struct Args {
  std::string weights, input, output;
  int64_t batch = 8;
  int64_t top_k = 100;
  bool top_k_given = false;  ///< detections asked for by name
  infer::BackendOptions backend;
};

// One engine per batch size of `input` (the last batch may be smaller). The last one built takes
// the model's weights over, so that they never exist twice in memory.
template <typename Net>
std::map<int64_t, engine::Engine> engines_for(Net& model, const Args& args, int threads,
                                              const at::Tensor& input) {
  const int64_t n = input.size(0);
  std::vector<int64_t> sizes{std::min(n, args.batch)};
  if (n > args.batch && n % args.batch != 0) sizes.push_back(n % args.batch);
  std::map<int64_t, engine::Engine> engines;
  for (size_t k = 0; k < sizes.size(); ++k) {
    auto o = args.backend.engine;
    o.threads = threads;
    o.batch = sizes[k];
    o.height = input.size(2);
    o.width = input.size(3);
    engines.emplace(sizes[k], k + 1 < sizes.size() ? engine::Engine::build(model, o)
                                                   : engine::Engine::build_consuming(model, o));
  }
  return engines;
}

// Runs `run` on each batch of `input` in turn, with a progress line when there are several.
template <typename Run>
void for_each_batch(const at::Tensor& input, int64_t batch, Run run) {
  const int64_t n = input.size(0);
  io::ProgressLine progress;
  for (int64_t i = 0; i < n; i += batch) {
    const int64_t done = std::min(n, i + batch);
    run(input.slice(0, i, done));
    if (n > batch)
      progress.update("forward: " + std::to_string(done) + "/" + std::to_string(n) + " images",
                      done == n);
  }
  progress.finish();
}

// A CornerNet/CenterNet hourglass: every head of every stack under its name, and the last stack's
// detections when it has CenterNet's heads.
void forward_large_hourglass(const Args& args, int threads) {
  auto loaded = io::load_large_hourglass(args.weights);
  loaded.model->to(args.backend.device);
  const auto input = read_input(args.input).to(torch::kFloat).contiguous();
  loaded.model->check_input(input);
  torch::InferenceMode guard;
  if (args.top_k_given) infer::require_detection_heads(loaded.model->options);
  const bool detects = infer::has_detection_heads(loaded.model->options);
  const std::string description = loaded.model->options.describe();
  std::map<int64_t, engine::Engine> engines;
  if (infer::uses_engine(args.backend)) {
    engines = engines_for(*loaded.model, args, threads, input);
    loaded.model = nullptr;
  }
  std::map<std::string, std::vector<at::Tensor>> parts;
  for_each_batch(input, args.batch, [&](const at::Tensor& x) {
    auto heads = engines.empty() ? loaded.model->forward(x.to(args.backend.device))
                                 : engines.at(x.size(0)).forward_all(x);
    for (auto& [name, t] : heads) t = t.cpu();
    if (detects) parts["detections"].push_back(infer::decode_detections(heads, args.top_k));
    for (const auto& [name, t] : heads) parts[name].push_back(t);
  });
  std::map<std::string, at::Tensor> outputs;
  for (const auto& [name, list] : parts) outputs.emplace(name, torch::cat(list, 0));
  io::write_tensor_dict(args.output, outputs);
  std::cout << "wrote " << args.output << ":";
  for (const auto& [name, t] : outputs) std::cout << " " << name << " " << t.sizes();
  std::cout << " (" << description << ")\n";
}

// Newell's network: {'output': N×S×J×H/4×W/4}, with the time per image.
void forward_stacked(const Args& args, int threads) {
  const auto device = args.backend.device;
  // This command is the bridge for cross-checks: keep cuDNN in full float32 (no TF32), which
  // matches the CPU within 1e-6 relative instead of 1e-3.
  at::globalContext().setAllowTF32CuDNN(false);
  auto loaded = io::load_model(args.weights);
  // Reading a checkpoint leaves freed buffers in the heap; give them back before the engine
  // allocates its weights, so that they do not add up in the peak resident memory.
  malloc_trim(0);
  loaded.model->to(device);
  auto input = read_input(args.input).to(torch::kFloat).contiguous();
  loaded.model->check_input(input);
  torch::InferenceMode guard;
  const std::string description = loaded.model->options.describe();
  std::map<int64_t, engine::Engine> engines;
  if (infer::uses_engine(args.backend)) {
    engines = engines_for(*loaded.model, args, threads, input);
    loaded.model = nullptr;
  }
  std::vector<at::Tensor> outputs;
  const auto start = std::chrono::steady_clock::now();
  for_each_batch(input, args.batch, [&](const at::Tensor& x) {
    outputs.push_back(engines.empty() ? loaded.model->forward(x.to(device)).cpu()
                                      : engines.at(x.size(0)).forward(x));
  });
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  auto output = torch::cat(outputs, 0);
  io::write_tensor_dict(args.output, {{"output", output}});
  const int64_t n = input.size(0);
  std::cout << "wrote " << args.output << ": output " << output.sizes() << " (" << description
            << "; " << ms << " ms, " << ms / std::max<int64_t>(n, 1) << " ms/image)\n";
}

}  // namespace

void add_forward_command(CLI::App& app, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  auto* cmd = app.add_subcommand(
      "forward",
      "run the network on a tensor file: {'input': N×3×H×W} → {'output': N×S×J×H/4×W/4}; a "
      "CenterNet or MMPose hourglass writes each head (N×S×C×H/4×W/4) and, with CenterNet's "
      "heads, 'detections' (N×K×D); a CornerNet one its 'features' (N×S×C×H/4×W/4)");
  cmd->add_option("--weights,-w", args->weights,
                  "checkpoint (native, posenet, bearpaw, centernet, cornernet or mmpose)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--input,-i", args->input, "torch.save'd dict with key 'input' (float32 NCHW)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--output,-o", args->output, "file to write {'output': tensor} to")->required();
  cmd->add_option("--batch", args->batch, "images per forward pass")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  auto* top_k = cmd->add_option("--top-k", args->top_k, "CenterNet models: detections per image")
                    ->capture_default_str()
                    ->check(CLI::PositiveNumber);
  add_backend_options(*cmd, args->backend);
  cmd->callback([args, &global, top_k] {
    apply_threads(global);
    args->top_k_given = top_k->count() > 0;
    if (io::holds_large_hourglass(args->weights))
      return forward_large_hourglass(*args, global.threads);
    forward_stacked(*args, global.threads);
  });
}

}  // namespace hg::cli
