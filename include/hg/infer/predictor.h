#pragma once
/// Top-down pose prediction, the library's one inference core: for every person of an image (a
/// crop centre and scale), warp the crop, run the network (optionally on the crop and its mirror
/// too), decode every stack's heatmaps and map the joints back to the image. `hourglass predict`,
/// `eval`, `show`, `bench`, the demo and training validation all run through it.
///
///     auto predictor = hg::infer::Predictor::load("model.hg");
///     const cv::Mat rgb = hg::data::read_image_rgb("people.jpg");
///     for (const auto& pose : predictor.predict(rgb, hg::infer::detect_people(rgb)))
///       ...  // pose.joints: S×J×3 (x, y in image pixels, confidence) of every stack
///
/// The network call is a `Backend`, a plain function object, so any runtime (LibTorch on CPU or
/// CUDA, the oneDNN engine, a fake in tests) plugs in without the predictor knowing.

#include "hg/data/dataset.h"
#include "hg/data/transform.h"
#include "hg/engine/engine.h"
#include "hg/infer/decode.h"
#include "hg/infer/people.h"
#include "hg/io/checkpoint.h"

#include <ATen/Tensor.h>
#include <c10/core/Device.h>
#include <opencv2/core.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace hg::infer {

/// The network: input N×3×R×R float32 RGB in [0, 1] on the CPU → N×S×J×(R/4)×(R/4) heatmaps
/// (any device; the predictor moves them to the CPU).
using Backend = std::function<at::Tensor(const at::Tensor&)>;

/// Which runtime runs the network.
enum class BackendKind {
  kAuto,    ///< the oneDNN engine on the CPU, LibTorch on CUDA
  kTorch,   ///< LibTorch (CPU or CUDA)
  kEngine,  ///< the oneDNN CPU engine (hg::engine)
};
/// "auto", "torch", "engine".
const runtime::NameTable<BackendKind>& name_table(BackendKind);
/// The name of `kind` in its table.
std::string backend_name(BackendKind kind);

/// How to run a model.
struct BackendOptions {
  BackendKind kind = BackendKind::kAuto;
  c10::Device device = c10::Device(c10::kCPU);  ///< LibTorch's device (the engine: CPU only)
  /// The engine's precision, algorithm, threads and plan batch (see engine_backend); its input
  /// shape is set by the predictor (R×R crops).
  engine::EngineOptions engine;
  /// LibTorch: the model's weights and input in channels-last order (as the trainer keeps them).
  bool channels_last = false;
};

/// Whether `options` choose the engine (kEngine, or kAuto on a CPU device). Throws for the engine
/// on a CUDA device, saying to use LibTorch.
bool uses_engine(const BackendOptions& options);

/// A backend running `model` with LibTorch on options.device, in inference mode (the model is
/// moved to the device and set to eval mode).
Backend torch_backend(model::StackedHourglass model, const BackendOptions& options = {});

/// A backend running `model` on the oneDNN CPU engine for 3×`input_size`² crops. With
/// `options.batch` 1 (the default) it builds one plan for one crop and runs it once per crop: one
/// plan keeps memory and build time low. With `options.batch` B > 1 it also builds a plan for B
/// crops (a second copy of the weights), runs every B crops of a call through it and the rest one
/// by one: for callers that often have B crops at once (the server's batches), since a batch-B
/// pass can cost less per crop than B batch-1 passes (docs/serving.md). The model's weights
/// are handed over to the engine (the model must not be used afterwards).
Backend engine_backend(model::StackedHourglass model, engine::EngineOptions options,
                       int input_size);

/// torch_backend or engine_backend, as `options` say.
Backend make_backend(model::StackedHourglass model, const BackendOptions& options, int input_size);
/// A backend running a top-down pose model of the CornerNet/CenterNet family (one heatmap head in
/// MMPose's style: MMPose's Hourglass-52) on LibTorch or the engine, as `options` say, for
/// 3×`input_size`² crops. It normalises the predictor's RGB in [0, 1] as MMPose's
/// PoseDataPreprocessor does, (255·x − mean) / std with mean (123.675, 116.28, 103.53) and std
/// (58.395, 57.12, 57.375), and returns the head's N×S×J×h×w maps. Throws for another head set
/// (CenterNet's detectors), or an input size the network does not take.
Backend pose_heatmap_backend(model::LargeHourglass model, const BackendOptions& options,
                             int input_size);

/// Inference settings.
struct PredictorOptions {
  /// Network input side R. 0: the checkpoint's (meta "input_size", 256 without) with
  /// Predictor::load, 256 otherwise. Must be a multiple of the model's input_multiple().
  int input_size = 0;
  /// Flip test: average with the mirrored crop's heatmaps. Unset: the checkpoint's default with
  /// Predictor::load (model_defaults), on otherwise.
  std::optional<bool> flip;
  int batch = 8;  ///< crops per network call (2× that with the flip test)
  /// Flip test: shift the mirrored crop's flipped-back heatmaps one pixel right before averaging
  /// (infer::average_with_mirror), as the original code, HRNet and MMPose do for weights trained
  /// on PixelGrid::kOriginal, where the mirror of a crop is one input pixel off its centre and
  /// the flipped-back maps sit 3/4 heatmap pixel left (the shift leaves 1/4 right). On the exact
  /// grid the mirror is exact and the shift puts it one pixel off. Off by default.
  bool flip_shift = false;
  /// The pixel grid the weights were trained on; unset: the checkpoint's with Predictor::load
  /// (see model_grid), exact otherwise.
  std::optional<data::PixelGrid> grid;
  /// The runtime (Predictor::load and from_model only).
  BackendOptions backend;
  /// Heatmaps → coordinates. Unset: the checkpoint's default with Predictor::load
  /// (model_defaults), the quarter-pixel offset otherwise.
  std::optional<PeakDecoder> decoder;
};

/// How a model is best used, as its training implies; native checkpoints record it (meta
/// "inference") and the predictor follows it unless told otherwise.
struct InferenceDefaults {
  /// Only a model that saw mirrored people gains from the flip test; the synthetic people shade
  /// their right limbs darker, a cue the mirror reverses.
  bool flip = true;
  /// DARK for targets centred at the joints' sub-pixel positions (what it decodes), the
  /// quarter-pixel offset for rounded ones.
  PeakDecoder decoder = PeakDecoder::kQuarterOffset;
};
/// {"flip": bool, "decoder": "dark"}: the checkpoint meta "inference".
nlohmann::json inference_defaults_to_json(const InferenceDefaults& defaults);

/// One person's prediction.
struct PosePrediction {
  PersonCrop person;
  /// S×J×3 float32: for every stack (the last is the final prediction), each joint's x, y in
  /// image pixels (centre of pixel (i, j) at (i, j)) and its confidence (the heatmap's peak).
  at::Tensor joints;
  /// S×J×h×w float32 heatmaps of the crop (flip-averaged when flip is on); kept only when asked.
  at::Tensor heatmaps;
};

/// Runs a backend on people crops. Thread-compatible: one predictor per thread.
class Predictor {
 public:
  /// `joints` names the backend's J outputs (its flip pairs drive the flip test).
  Predictor(Backend backend, data::JointSet joints, PredictorOptions options = {});

  /// The front door: loads any supported checkpoint of Newell's network (see io::load_model) or a
  /// top-down pose model of the CornerNet/CenterNet family (from_large_hourglass), and builds
  /// the backend `options.backend` describes, with the checkpoint's joint set (model_joints),
  /// pixel grid and input size unless `options` set them. Throws naming the file on anything
  /// malformed and naming the option when an input size does not fit the model.
  static Predictor load(const std::string& weights, PredictorOptions options = {});
  /// As load, for a model already loaded (its weights go to the backend).
  static Predictor from_model(io::LoadedModel model, PredictorOptions options = {});
  /// As load, for MMPose's top-down Hourglass (pose_heatmap_backend) loaded from `source`: its
  /// meta's joint set, else COCO's for 17 maps (MPII's for 16); the original pixel grid with
  /// the flip test's one-pixel shift (flip_shift is set), as MMPose's non-UDP heatmaps are
  /// decoded; input size 256 unless the meta or `options` say. Throws naming `source` for a
  /// CenterNet detector.
  static Predictor from_large_hourglass(io::LoadedLargeHourglass model, const std::string& source,
                                        PredictorOptions options = {});

  /// Predicts every person of `rgb` (CV_8UC3 RGB), options().batch crops per network call.
  /// Heatmaps are kept when `keep_heatmaps`.
  std::vector<PosePrediction> predict(const cv::Mat& rgb, const std::vector<PersonCrop>& people,
                                      bool keep_heatmaps = false) const;

  /// Predicts from prepared network inputs: `input` N×3×R×R (as crops() or data::crop_input make
  /// them) of the crops `crops` → N×S×J×3 float32 joints in image pixels (see PosePrediction),
  /// options().batch crops per network call. The crops' own pixel grid is replaced by the
  /// predictor's.
  at::Tensor predict_crops(const at::Tensor& input,
                           const std::vector<data::CropParams>& crops) const;

  /// The crops as the network sees them: N×3×R×R float32 RGB in [0, 1].
  at::Tensor crops(const cv::Mat& rgb, const std::vector<PersonCrop>& people) const;

  /// The network's heatmaps of `input` (N×3×R×R): N×S×J×(R/4)×(R/4) float32 on the CPU,
  /// flip-averaged when options().flip; one backend call (2N crops with the flip test).
  at::Tensor heatmaps(const at::Tensor& input) const;

  /// A predictor on the same backend (shared, not copied: use both on one thread) with the flip
  /// test on or off.
  Predictor with_flip(bool flip) const;

  const data::JointSet& joints() const { return joints_; }
  /// The options with input_size, grid, flip and decoder resolved.
  const PredictorOptions& options() const { return options_; }

 private:
  Backend backend_;
  data::JointSet joints_;
  std::vector<int> flip_perm_;
  PredictorOptions options_;
};

/// The joint set a checkpoint was trained with: its meta "joints" (written by the trainer and by
/// `hourglass convert`), else a built-in set named by meta "joint_set" (older checkpoints), else
/// MPII for imported PyTorch checkpoints of 16 joints, else joints named "joint-0", … without flip
/// pairs or skeleton. Throws naming the file when the set does not match the model's joint count.
data::JointSet model_joints(const io::LoadedModel& model, const std::string& source);

/// The pixel grid a checkpoint's trainer used: imported PyTorch weights PixelGrid::kOriginal;
/// native: meta "pixel_grid" = "exact" | "original" (default exact).
data::PixelGrid model_grid(const io::LoadedModel& model);

/// The input side a checkpoint was trained at: meta "input_size", else 256.
int model_input_size(const io::LoadedModel& model);

/// A checkpoint's inference defaults: meta "inference" (written by the trainer), else the
/// defaults of InferenceDefaults (imported and older checkpoints). Throws naming the file and
/// key on a malformed value.
InferenceDefaults model_defaults(const io::LoadedModel& model);

/// A checkpoint's meta with everything its format implies made explicit: "joints" (model_joints),
/// "pixel_grid", "input_size" and "inference" (model_defaults), every other key as it is. What
/// `convert` and every export write, so that a converted or exported model predicts alike.
nlohmann::json deployment_meta(const io::LoadedModel& model, const std::string& source);

}  // namespace hg::infer
