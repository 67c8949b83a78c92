#pragma once
/// A fast CPU inference engine for both hourglass families (Newell's pose network and the
/// CornerNet/CenterNet hourglass), built on oneDNN.
///
/// Engine::build turns a loaded model into a fixed plan for one input shape, of oneDNN primitives
/// and the engine's own kernels (kernels.h: Winograd 3×3 convolutions, the pre-activation batch
/// norm with the residual's skip copy and upsampling, max-pooling, conversion to bf16): batch norm
/// folded into the convolutions, convolutions fused with their ReLU and residual additions, all
/// activations in oneDNN's blocked layout (nChw16c/8c), weights reordered once, and activation
/// buffers shared by a liveness-based memory plan. Engine::forward then runs that plan; its output
/// equals StackedHourglassImpl::forward's up to floating-point rounding.
///
/// Memory: the engine keeps its own (reordered) weights, about the model's size in f32, half in
/// bf16 (Winograd layers keep plain f32 weights and transform them on every pass). oneDNN
/// runs on OpenMP (libgomp, as LibTorch): on a machine shared with other busy processes,
/// OMP_WAIT_POLICY=passive avoids threads spinning at barriers while their partner waits for a
/// core.

#include "hg/runtime/names.h"

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hg::model {
class StackedHourglassImpl;
class LargeHourglassImpl;
}  // namespace hg::model

namespace hg::engine {

/// Arithmetic of the convolutions. Activations between residual blocks (the trunk), heatmaps and
/// the output are always float32.
enum class Precision {
  kF32,   ///< float32 everywhere: the reference, the same output on every machine
  kBf16,  ///< bfloat16 inside residuals and heads, f32 accumulation; needs avx512_core_bf16
  /// Per layer, the fastest of f32 direct, f32 Winograd (as the Algorithm allows) and, on a CPU
  /// with avx512_core_bf16, bf16 direct, timed at build: another method than f32
  /// direct must be timed kAutoGain faster. The default. The first build on a machine times the
  /// layers and keeps the answers (EngineOptions::choice_cache), so that later builds choose
  /// alike; another machine may choose otherwise, within bf16's rounding of f32 (the bf16 mode's
  /// bounds). Use kF32 for outputs that must be the same on every machine.
  kAuto,
};

/// Algorithm::kAuto and Precision::kAuto take another method than the reference (f32 direct;
/// bf16 direct in bf16 mode) for a layer timed at least this much faster: a clear gain, since
/// the others round differently (and a close call could go either way between two builds).
constexpr double kAutoGain = 1.05;

/// One way the engine can compute a convolution.
enum class ConvMethod {
  kF32Direct,    ///< oneDNN's direct (or 1×1) convolution in float32
  kF32Winograd,  ///< the engine's Winograd F(4×4,3×3) kernel, float32 arithmetic
  kBf16Direct,   ///< oneDNN's direct convolution in bfloat16 with f32 accumulation
};

/// "f32 direct", "f32 winograd", "bf16 direct".
std::string method_name(ConvMethod method);

/// The methods an auto choice weighs for one layer, with a pass of each (on zeroed data).
struct LayerCandidates {
  std::string layer;  ///< e.g. "128->128 3x3/1 @64x64"
  /// The layer with its source kind, e.g. "128->128 3x3/1 @64x64 internal". Not its batch: plans
  /// for other batch sizes make the same choices (so a crop's output does not depend on the
  /// batch it ran in), timed at the batch of the first plan built.
  std::string key;
  std::vector<ConvMethod> methods;          ///< the reference first
  std::vector<std::function<void()>> runs;  ///< one pass of each method, same order
};

/// Milliseconds of one pass of each candidate, in their order. The default
/// (time_layer_candidates) runs them; tests pass a fake that decides.
using LayerTimer = std::function<std::vector<double>(const LayerCandidates&)>;

/// Runs the candidates in turns, six rounds, each round starting one candidate later, and returns
/// each one's best time of rounds 2–6 (round 1 warms up): in turns so that a busy machine slows
/// all of them alike, rotated so that none always runs after the same one.
std::vector<double> time_layer_candidates(const LayerCandidates& candidates);

/// `timer`, asked once per distinct layer key, methods and OpenMP thread count: later questions
/// get the first answer, kept in memory and, unless `cache` is "", in that JSON file under the
/// CPU model and oneDNN version (read before timing, written after). Engines built with one
/// such timer, or one such file, choose alike for alike layers, so their outputs agree bit for
/// bit.
LayerTimer remembering(LayerTimer timer, const std::string& cache = "");

/// The timer of builds that set none: one remembering(time_layer_candidates, cache) per cache
/// file for the whole process, so that every engine built on this machine (a server's and a
/// predictor's, one per batch size, or another process's) makes the same timed choices and
/// later builds skip the timing.
const LayerTimer& process_layer_timer(const std::string& cache);

/// $XDG_CACHE_HOME/hourglass/engine.json, else ~/.cache/hourglass/engine.json ("" without either).
std::string default_choice_cache();

/// methods[0] (the reference) unless another is at least `gain` times faster than it; then the
/// fastest. `ms` holds one time per method.
ConvMethod pick_method(const std::vector<ConvMethod>& methods, const std::vector<double>& ms,
                       double gain = kAutoGain);

/// How each 3×3 convolution is computed.
enum class Algorithm {
  /// Per layer, the engine's Winograd F(4×4,3×3) kernel if timed ≥5% (kAutoGain) faster than
  /// oneDNN's direct convolution at build. Being timed, the choice may differ between two builds on
  /// a busy
  /// machine, and the outputs with it (within Winograd's rounding).
  kAuto,
  kDirect,  ///< direct convolution only (most accurate; the same output on every build)
  /// Winograd (f32) for every 3×3 layer it can compute (see winograd_supported; channels in
  /// multiples of 16, sides in multiples of 4), direct elsewhere
  kWinograd,
};

/// "auto", "f32", "bf16".
const runtime::NameTable<Precision>& name_table(Precision);
/// "auto", "direct", "winograd".
const runtime::NameTable<Algorithm>& name_table(Algorithm);
/// The name of `precision` in its table.
std::string precision_name(Precision precision);
/// The name of `algorithm` in its table.
std::string algorithm_name(Algorithm algorithm);

/// True when this CPU (and oneDNN's ISA limit, ONEDNN_MAX_CPU_ISA) allows avx512_core_bf16.
bool bf16_supported();
/// True when the engine's Winograd kernel can run here (it needs AVX-512, and oneDNN's ISA limit
/// ONEDNN_MAX_CPU_ISA at avx512_core or above); elsewhere Algorithm::kWinograd and kAuto compute
/// every layer directly.
bool winograd_supported();

struct EngineOptions {
  /// oneDNN (OpenMP) threads; 0 = as many as the machine has cores. Applies process-wide, so it
  /// also sets LibTorch's OpenMP thread count.
  int threads = 0;
  /// Timed per layer at build (see Precision::kAuto): the fastest on the CPU at hand, since how
  /// fast bf16 is depends on the core and oneDNN's kernels for it, not on a CPU flag.
  Precision precision = Precision::kAuto;
  Algorithm algorithm = Algorithm::kAuto;
  /// Times the auto choices' candidates (empty = process_layer_timer(choice_cache)).
  LayerTimer timer;
  /// The file the timed choices are kept in between processes ("" = only in this process).
  std::string choice_cache = default_choice_cache();
  /// The only input shape the plan accepts: batch×3×height×width.
  int64_t batch = 1;
  int64_t height = 256;
  int64_t width = 256;
};

/// What a built plan contains.
struct EngineSummary {
  int64_t convolutions = 0;      ///< convolution primitives
  int64_t winograd = 0;          ///< of which Winograd
  int64_t bf16 = 0;              ///< of which computing in bfloat16 (the rest: f32 direct)
  int64_t steps = 0;             ///< primitives executed per forward pass (conversions included)
  int64_t weight_bytes = 0;      ///< reordered weights and biases
  int64_t activation_bytes = 0;  ///< the shared activation arena
  double build_ms = 0;           ///< time Engine::build took (timing included)
  /// One line per distinct convolution shape: shape, choice, oneDNN implementation.
  std::string layers;
};

/// Time one kind of step takes in a forward pass (see Engine::profile).
struct StepProfile {
  /// What the steps compute, e.g. "conv 128->128 3x3/1 @64x64 f32 winograd +relu",
  /// "bn+relu 256 @64x64 -> f32", "max-pool 256 @64x64".
  std::string label;
  int64_t count = 0;  ///< steps with this label per pass
  double ms = 0;      ///< their total milliseconds per pass
  double gflop = 0;   ///< their total arithmetic per pass (convolutions; 0 for the rest)
};

class Engine {
 public:
  /// Builds the plan for `model` (read only; the engine keeps no reference to it, so it may be
  /// freed afterwards). Throws if the options are invalid for the model (shape not a multiple of
  /// 4·2^depth) or if bf16 is asked for on a CPU without avx512_core_bf16.
  static Engine build(const model::StackedHourglassImpl& model, const EngineOptions& options);
  /// Like build, but frees each of the model's parameters and buffers as soon as the engine has
  /// its copy, so that the two copies of the weights never coexist (peak memory: one copy). The
  /// model must not be used afterwards.
  static Engine build_consuming(model::StackedHourglassImpl& model, const EngineOptions& options);
  /// The same for a CornerNet/CenterNet hourglass (any head style): its basic residuals,
  /// strided convolutions, upsample-adds, stack merges and every head lower into the same kinds
  /// of steps, with the same precisions, algorithms and memory plan. Its outputs are
  /// LargeHourglassOptions::outputs() (a CornerNet network's: its features). Throws as build
  /// does, or if the network has no head.
  static Engine build(const model::LargeHourglassImpl& model, const EngineOptions& options);
  /// build, freeing the model's tensors as it goes (see build_consuming above).
  static Engine build_consuming(model::LargeHourglassImpl& model, const EngineOptions& options);

  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;
  ~Engine();

  /// input: batch×3×height×width float32 (any strides; made contiguous) →
  /// batch×stacks×joints×(height/4)×(width/4) float32, a new tensor on every call. One call at a
  /// time per engine: the plan's activation buffers are shared by all calls.
  at::Tensor forward(const at::Tensor& input);
  /// Every output by name (a pose network's "output"; a CornerNet/CenterNet network's
  /// LargeHourglassOptions::outputs()):
  /// batch×stacks×channels×(height/4)×(width/4) float32 each, as LargeHourglassImpl::forward
  /// returns them. forward is this for a network of one output, and refuses one of several.
  std::map<std::string, at::Tensor> forward_all(const at::Tensor& input);
  /// The outputs' names, in the network's order (its heads').
  std::vector<std::string> output_names() const;

  /// Runs forward `runs` times (after one warm-up pass), timing every step, and returns the mean
  /// time per pass of each kind of step, slowest first. Waiting for each step makes the total a
  /// little more than forward's time.
  std::vector<StepProfile> profile(const at::Tensor& input, int runs);

  const EngineOptions& options() const;
  const EngineSummary& summary() const;

  /// The built primitives and buffers (opaque: defined in engine.cpp).
  struct Plan;

 private:
  explicit Engine(std::unique_ptr<Plan> plan);
  /// Every output, in output_names' order, adding each step's milliseconds to
  /// (*step_ms)[step] when step_ms is given.
  std::vector<at::Tensor> run(const at::Tensor& input, std::vector<double>* step_ms);
  std::unique_ptr<Plan> plan_;
};

}  // namespace hg::engine
