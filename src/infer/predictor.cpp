#include "hg/infer/predictor.h"
#include "hg/model/large_hourglass.h"
#include "hg/runtime/text.h"

#include "hg/data/readers.h"
#include "hg/data/sample.h"
#include "hg/infer/decode.h"
#include "hg/runtime/limits.h"
#include "hg/runtime/runtime.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

namespace hg::infer {

const runtime::NameTable<BackendKind>& name_table(BackendKind) {
  static const runtime::NameTable<BackendKind> table = {{"auto", BackendKind::kAuto},
                                                        {"torch", BackendKind::kTorch},
                                                        {"engine", BackendKind::kEngine}};
  return table;
}

std::string backend_name(BackendKind kind) {
  return runtime::name_in(name_table(kind), kind);
}

bool uses_engine(const BackendOptions& o) {
  TORCH_CHECK(o.kind != BackendKind::kEngine || o.device.is_cpu(),
              "the engine backend runs on the CPU, not on ", o.device.str(),
              ": use the torch backend");
  return o.kind == BackendKind::kEngine || (o.kind == BackendKind::kAuto && o.device.is_cpu());
}

Backend torch_backend(model::StackedHourglass model, const BackendOptions& options) {
  const auto device = options.device;
  const auto format =
      options.channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
  model->to(device);
  model->eval();
  return [model, device, format](const at::Tensor& input) mutable {
    torch::InferenceMode guard;
    return model->forward(input.to(device).contiguous(format));
  };
}

namespace {

// The engine plans of engine_backend for either family's network.
template <typename Net>
Backend engine_plans(Net& model, engine::EngineOptions options, int input_size) {
  TORCH_CHECK(options.batch >= 1, "the engine's batch must be >= 1, got ", options.batch);
  const int64_t batch = options.batch;
  options.height = options.width = input_size;
  // The batch-1 plan first, so that its timed choices (which the batch-B plan follows, see
  // engine::LayerCandidates::key) are those of a predictor without a batch plan.
  const auto plan = [&](int64_t size, bool last) {
    options.batch = size;
    return std::make_shared<engine::Engine>(last ? engine::Engine::build_consuming(model, options)
                                                 : engine::Engine::build(model, options));
  };
  const auto one = plan(1, batch == 1);
  const auto many = batch > 1 ? plan(batch, true) : nullptr;
  return [one, many, batch](const at::Tensor& input) {
    std::vector<at::Tensor> out;
    int64_t i = 0;
    for (; many && i + batch <= input.size(0); i += batch)
      out.push_back(many->forward(input.slice(0, i, i + batch)));
    for (; i < input.size(0); ++i) out.push_back(one->forward(input.slice(0, i, i + 1)));
    return torch::cat(out, 0);
  };
}

// A network of one heatmap head in MMPose's style: a top-down pose model (MMPose's Hourglass-52).
bool is_pose_heatmap_model(const model::LargeHourglassOptions& options) {
  return options.heads().size() == 1 && options.head_style() == model::HeadStyle::kMMPose;
}

// MMPose's PoseDataPreprocessor on the predictor's RGB in [0, 1]: (255·x − mean) / std per
// channel, with the ImageNet mean and std of its configs.
at::Tensor mmpose_normalised(const at::Tensor& rgb) {
  const auto mean = torch::tensor({123.675f, 116.28f, 103.53f}).view({1, 3, 1, 1});
  const auto std = torch::tensor({58.395f, 57.12f, 57.375f}).view({1, 3, 1, 1});
  return ((rgb * 255 - mean) / std).contiguous();
}

}  // namespace

Backend engine_backend(model::StackedHourglass model, engine::EngineOptions options,
                       int input_size) {
  return engine_plans(*model, options, input_size);
}

Backend make_backend(model::StackedHourglass model, const BackendOptions& options, int input_size) {
  return uses_engine(options) ? engine_backend(model, options.engine, input_size)
                              : torch_backend(model, options);
}

Backend pose_heatmap_backend(model::LargeHourglass model, const BackendOptions& options,
                             int input_size) {
  TORCH_CHECK(is_pose_heatmap_model(model->options),
              "a top-down pose model has one heatmap head in MMPose's style, got heads ",
              model::heads_text(model->options.heads()), " (", model->options.describe(),
              "): CenterNet's detectors run in forward");
  model->options.check_input_size(input_size, input_size, "the input size");
  if (uses_engine(options)) {
    auto network = engine_plans(*model, options.engine, input_size);
    return [network](const at::Tensor& input) { return network(mmpose_normalised(input)); };
  }
  const auto device = options.device;
  model->to(device);
  model->eval();
  return [model, device](const at::Tensor& input) mutable {
    torch::InferenceMode guard;
    return model->forward(mmpose_normalised(input).to(device)).begin()->second;
  };
}

Predictor::Predictor(Backend backend, data::JointSet joints, PredictorOptions options)
    : backend_(std::move(backend)),
      joints_(std::move(joints)),
      flip_perm_(joints_.flip_permutation()),
      options_(std::move(options)) {
  TORCH_CHECK(backend_, "the predictor needs a backend");
  if (options_.input_size == 0) options_.input_size = 256;
  if (!options_.grid) options_.grid = data::PixelGrid::kExact;
  if (!options_.flip) options_.flip = InferenceDefaults{}.flip;
  if (!options_.decoder) options_.decoder = InferenceDefaults{}.decoder;
  TORCH_CHECK(options_.input_size >= 16 && options_.input_size % 4 == 0,
              "input size must be a multiple of 4 and >= 16, got ", options_.input_size);
  TORCH_CHECK(options_.batch >= 1, "batch must be >= 1, got ", options_.batch);
}

Predictor Predictor::load(const std::string& weights, PredictorOptions options) {
  if (io::holds_large_hourglass(weights))
    return from_large_hourglass(io::load_large_hourglass(weights), weights, std::move(options));
  return from_model(io::load_model(weights), std::move(options));
}

Predictor Predictor::from_model(io::LoadedModel model, PredictorOptions options) {
  const std::string source = model.source.empty() ? "the model" : model.source;
  if (options.input_size == 0) options.input_size = model_input_size(model);
  model.model->options.check_input_size(options.input_size, options.input_size,
                                        "the input size of " + source);
  if (!options.grid) options.grid = model_grid(model);
  const auto defaults = model_defaults(model);
  if (!options.flip) options.flip = defaults.flip;
  if (!options.decoder) options.decoder = defaults.decoder;
  auto joints = model_joints(model, source);
  auto backend = make_backend(model.model, options.backend, options.input_size);
  return Predictor(std::move(backend), std::move(joints), std::move(options));
}

Predictor Predictor::with_flip(bool flip) const {
  Predictor copy = *this;
  copy.options_.flip = flip;
  return copy;
}

at::Tensor Predictor::crops(const cv::Mat& rgb, const std::vector<PersonCrop>& people) const {
  TORCH_CHECK(rgb.type() == CV_8UC3, "the predictor takes 8-bit RGB images");
  const int r = options_.input_size;
  auto out = torch::empty({static_cast<int64_t>(people.size()), r, r, 3}, torch::kFloat);
  for (size_t i = 0; i < people.size(); ++i) {
    auto crop = people[i].crop;
    crop.grid = *options_.grid;
    const cv::Mat input = data::crop_input(rgb, crop, r);
    std::memcpy(out[static_cast<int64_t>(i)].data_ptr<float>(), input.ptr<float>(),
                sizeof(float) * 3 * r * r);
  }
  return out.permute({0, 3, 1, 2}).contiguous();
}

at::Tensor Predictor::heatmaps(const at::Tensor& input) const {
  const int64_t n = input.size(0);
  // One call on the crops and their mirrors together: one batch for the backend to fill.
  const auto x = *options_.flip ? torch::cat({input, input.flip({3})}) : input;
  auto out = backend_(x).to(torch::kCPU, torch::kFloat);
  TORCH_CHECK(out.dim() == 5 && out.size(0) == x.size(0) && out.size(2) == joints_.size(),
              "the backend returned heatmaps of shape ", out.sizes(), " for ", x.size(0),
              " crops; expected N×S×", joints_.size(), "×h×w");
  if (!*options_.flip) return out;
  return average_with_mirror(out.slice(0, 0, n), out.slice(0, n), flip_perm_, options_.flip_shift);
}

at::Tensor Predictor::predict_crops(const at::Tensor& input,
                                    const std::vector<data::CropParams>& crops) const {
  TORCH_CHECK(input.dim() == 4 && input.size(0) == static_cast<int64_t>(crops.size()),
              "predict_crops needs one crop per input row, got ", crops.size(), " crops for input ",
              input.sizes());
  std::vector<at::Tensor> out;
  for (int64_t first = 0; first < input.size(0); first += options_.batch) {
    const int64_t last = std::min<int64_t>(input.size(0), first + options_.batch);
    const auto maps = heatmaps(input.slice(0, first, last));
    const auto peaks = decode(maps, *options_.decoder);  // N×S×J×3, heatmap pixels
    const int side = static_cast<int>(maps.size(-1));
    for (int64_t i = first; i < last; ++i) {
      auto crop = crops[static_cast<size_t>(i)];
      crop.grid = *options_.grid;
      out.push_back(peaks_to_image(peaks[i - first], crop, side));
    }
  }
  return out.empty() ? torch::empty({0}) : torch::stack(out);
}

std::vector<PosePrediction> Predictor::predict(const cv::Mat& rgb,
                                               const std::vector<PersonCrop>& people,
                                               bool keep_heatmaps) const {
  std::vector<PosePrediction> out;
  for (size_t first = 0; first < people.size(); first += static_cast<size_t>(options_.batch)) {
    const size_t last = std::min(people.size(), first + static_cast<size_t>(options_.batch));
    const std::vector<PersonCrop> chunk(people.begin() + first, people.begin() + last);
    const auto maps = heatmaps(crops(rgb, chunk));
    const auto peaks = decode(maps, *options_.decoder);  // N×S×J×3, heatmap pixels
    const int side = static_cast<int>(maps.size(-1));
    for (size_t i = 0; i < chunk.size(); ++i) {
      auto crop = chunk[i].crop;
      crop.grid = *options_.grid;
      const auto k = static_cast<int64_t>(i);
      out.push_back({chunk[i], peaks_to_image(peaks[k], crop, side),
                     keep_heatmaps ? maps[k].clone() : at::Tensor()});
    }
  }
  return out;
}

namespace {

// The joint set of a model of `count` joints from its checkpoint's meta (see model_joints), else
// `fallback` where it has `count` joints, else joints named "joint-0", …
data::JointSet joints_of(const nlohmann::json& meta, int64_t count, const std::string& source,
                         const data::JointSet& fallback) {
  data::JointSet joints;
  if (meta.contains("joints")) {
    joints = data::joint_set_from_json(meta["joints"], source + " (meta 'joints')");
  } else if (meta.contains("joint_set") && meta["joint_set"].is_string()) {
    const auto name = meta["joint_set"].get<std::string>();
    if (name == "mpii" || name == "synthetic") {
      joints = data::mpii_joints();
      joints.name = name;
    } else if (name == "flic") {
      joints = data::flic_joints();
    } else if (name == "coco") {
      joints = data::coco_joints();
    }
  } else if (fallback.size() == count) {
    joints = fallback;
  }
  if (joints.names.empty()) {
    joints.name = "generic";
    for (int64_t k = 0; k < count; ++k) joints.names.push_back("joint-" + std::to_string(k));
  }
  TORCH_CHECK(joints.size() == count, source, " names ", joints.size(), " joints (", joints.name,
              ") but its model predicts ", count);
  return joints;
}

}  // namespace

data::JointSet model_joints(const io::LoadedModel& model, const std::string& source) {
  // Both PyTorch ports train on MPII.
  return joints_of(
      model.meta, model.model->options.joints(), source,
      model.format != io::CheckpointFormat::kNative ? data::mpii_joints() : data::JointSet{});
}

namespace {

// The enum a checkpoint's meta value names, by its name table; throws naming `where` and the
// names taken.
template <typename E>
E meta_name(const nlohmann::json& value, const std::string& where) {
  const auto& table = name_table(E{});
  TORCH_CHECK(value.is_string(), where, " = ", runtime::json_text(value), " is not ",
              runtime::names_listed(table));
  try {
    return runtime::parse_in(table, value.get<std::string>(), where);
  } catch (const std::invalid_argument& e) {
    TORCH_CHECK(false, e.what());
  }
}

}  // namespace

nlohmann::json inference_defaults_to_json(const InferenceDefaults& defaults) {
  return {{"flip", defaults.flip}, {"decoder", decoder_name(defaults.decoder)}};
}

namespace {

InferenceDefaults defaults_of(const nlohmann::json& meta, const std::string& source) {
  InferenceDefaults d;
  if (!meta.contains("inference")) return d;
  const auto& j = meta["inference"];
  const std::string where = source + ": checkpoint meta 'inference'";
  TORCH_CHECK(j.is_object(), where, " = ", runtime::json_text(j), " is not an object");
  if (j.contains("flip")) {
    TORCH_CHECK(j["flip"].is_boolean(), where, ".flip = ", runtime::json_text(j["flip"]),
                " is not true or false");
    d.flip = j["flip"].get<bool>();
  }
  if (j.contains("decoder")) {
    d.decoder = meta_name<PeakDecoder>(j["decoder"], where + ".decoder");
  }
  return d;
}

int input_size_of(const nlohmann::json& meta) {
  if (!meta.contains("input_size")) return 256;
  const auto& size = meta["input_size"];
  TORCH_CHECK(size.is_number_integer(), "checkpoint meta 'input_size' = ", runtime::json_text(size),
              " is not an integer");
  // Read as 64 bits and bounded: a narrowing read would take 2^32 + 256 for 256.
  const auto side = size.get<int64_t>();
  TORCH_CHECK(side > 0 && side <= limits::kMaxInputSize, "checkpoint meta 'input_size' = ", side,
              " is outside 1..", limits::kMaxInputSize, " (the limit); give the input size");
  return static_cast<int>(side);
}

data::PixelGrid grid_of(const nlohmann::json& meta, data::PixelGrid fallback,
                        const std::string& source) {
  if (!meta.contains("pixel_grid")) return fallback;
  return meta_name<data::PixelGrid>(meta["pixel_grid"], source + ": checkpoint meta 'pixel_grid'");
}

}  // namespace

data::PixelGrid model_grid(const io::LoadedModel& model) {
  if (model.format != io::CheckpointFormat::kNative) return data::PixelGrid::kOriginal;
  return grid_of(model.meta, data::PixelGrid::kExact, model.source);
}

InferenceDefaults model_defaults(const io::LoadedModel& model) {
  return defaults_of(model.meta, model.source);
}

int model_input_size(const io::LoadedModel& model) {
  return input_size_of(model.meta);
}

nlohmann::json deployment_meta(const io::LoadedModel& model, const std::string& source) {
  nlohmann::json meta = model.meta.is_object() ? model.meta : nlohmann::json::object();
  meta["joints"] = data::joint_set_to_json(model_joints(model, source));
  meta["pixel_grid"] = data::pixel_grid_name(model_grid(model));
  meta["input_size"] = model_input_size(model);
  meta["inference"] = inference_defaults_to_json(model_defaults(model));
  return meta;
}

Predictor Predictor::from_large_hourglass(io::LoadedLargeHourglass model, const std::string& source,
                                          PredictorOptions options) {
  const auto& heads = model.model->options.heads();
  TORCH_CHECK(
      is_pose_heatmap_model(model.model->options), source, " holds a ",
      model.model->options.head_style() == model::HeadStyle::kCornerNet ? "CornerNet" : "CenterNet",
      " detector (heads ", model::heads_text(heads),
      "), not a top-down pose model: run it with forward (or, for CenterNet's multi_pose, "
      "predict)");
  if (options.input_size == 0) options.input_size = input_size_of(model.meta);
  model.model->options.check_input_size(options.input_size, options.input_size,
                                        "the input size of " + source);
  // MMPose's top-down heatmaps (non-UDP): the original pixel grid, and its flip test's shift.
  if (!options.grid) options.grid = grid_of(model.meta, data::PixelGrid::kOriginal, source);
  options.flip_shift = true;
  const auto defaults = defaults_of(model.meta, source);
  if (!options.flip) options.flip = defaults.flip;
  if (!options.decoder) options.decoder = defaults.decoder;
  const int64_t count = heads.front().channels;
  auto joints =
      joints_of(model.meta, count, source, count == 16 ? data::mpii_joints() : data::coco_joints());
  auto backend = pose_heatmap_backend(model.model, options.backend, options.input_size);
  return Predictor(std::move(backend), std::move(joints), std::move(options));
}

}  // namespace hg::infer
