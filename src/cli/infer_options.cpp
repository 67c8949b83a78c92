#include "cli/cli.h"

#include "hg/data/boxes.h"
#include "hg/data/dataset.h"
#include "hg/data/json.h"
#include "hg/runtime/limits.h"
#include "hg/runtime/runtime.h"

#include <malloc.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <utility>
#include <vector>

namespace hg::cli {

void add_backend_options(CLI::App& cmd, infer::BackendOptions& o) {
  using infer::BackendKind;
  add_choice(cmd, "--backend", o.kind,
             "network runtime: auto (the oneDNN engine on CPU, LibTorch on CUDA), torch or "
             "engine");
  cmd.add_option_function<std::string>(
         "--device", [&o](const std::string& name) { o.device = runtime::parse_device(name); },
         "cpu, cuda or cuda:N")
      ->default_str("cpu");
  add_choice(
      cmd, "--precision", o.engine.precision,
      "engine arithmetic: auto (per layer the fastest of f32 and, on AVX512-BF16 CPUs, bf16, "
      "timed at build), f32 or bf16");
  add_choice(cmd, "--algorithm", o.engine.algorithm,
             "engine 3×3 convolutions: auto (fastest per layer), direct or winograd");
}

CLI::Option* add_predictor_options(CLI::App& cmd, PredictorArgs& a, bool weights_optional,
                                   bool batched) {
  auto* weights = cmd.add_option("--weights,-w", a.weights,
                                 "checkpoint (native, posenet, bearpaw, MMPose's top-down "
                                 "hourglass, or CenterNet's multi_pose in predict)")
                      ->required(!weights_optional)
                      ->check(CLI::ExistingFile);
  add_backend_options(cmd, a.options.backend);
  cmd.add_option("--size", a.options.input_size,
                 "network input side (default: the checkpoint's, else 256)")
      ->check(CLI::NonNegativeNumber);
  auto* flip = cmd.add_flag_callback(
      "--flip", [&a] { a.options.flip = true; },
      "flip test: average the heatmaps of the crop and of its mirror (default: the checkpoint's "
      "choice, which `hourglass info --weights` shows; on for imported weights)");
  cmd.add_flag_callback(
         "--no-flip", [&a] { a.options.flip = false; }, "no flip test (faster)")
      ->excludes(flip);
  cmd.add_flag_callback(
      "--flip-shift", [&a] { a.options.flip_shift = true; },
      "flip test: shift the mirror's heatmaps one pixel right before averaging (for weights "
      "trained on the original code's pixel grid, as HRNet/MMPose's shift_heatmap; always on "
      "for MMPose's models)");
  auto* decoder = add_choice(cmd, "--decoder", a.options.decoder,
                             "heatmaps to coordinates: quarter-offset (the original quarter-pixel "
                             "step toward the higher neighbour) or dark (smoothed log-heatmap, "
                             "Newton step at the peak); default: the checkpoint's choice");
  cmd.add_flag_callback(
         "--dark", [&a] { a.options.decoder = infer::PeakDecoder::kDark; }, "--decoder dark")
      ->excludes(decoder);
  if (batched)
    cmd.add_option("--batch", a.options.batch, "people per network call")
        ->capture_default_str()
        ->check(CLI::PositiveNumber);
  return weights;
}

void add_max_pixels_option(CLI::App& cmd) {
  cmd.add_option_function<int64_t>(
         "--max-pixels", [](int64_t n) { data::set_max_image_pixels(n); },
         "refuse images declaring more pixels (width × height) than this, before decoding them "
         "(default " +
             std::to_string(limits::kDefaultMaxImagePixels) + ")")
      ->check(CLI::PositiveNumber);
}

infer::Predictor make_predictor(const PredictorArgs& a, const GlobalOptions& global) {
  // Loading and the engine build free hundreds of weight-sized blocks while allocating others.
  // glibc's adaptive mmap threshold would move blocks of that size into its heap, where freed
  // ones stay resident: 100 MB more peak memory for the 8-stack model (measured). A fixed
  // threshold (its initial value) hands them back to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  auto options = a.options;
  options.backend.engine.threads = global.threads;
  return infer::Predictor::load(a.weights, options);
}

void add_person_options(CLI::App& cmd, PersonArgs& a) {
  auto* g = cmd.add_option_group("people", "where the people are (default: HOG people detector)");
  auto* center = g->add_option("--center", a.center, "crop centre X,Y in image pixels")
                     ->delimiter(',')
                     ->expected(2);
  auto* scale = g->add_option("--scale", a.scale, "crop side = 200·S pixels (with --center)");
  center->needs(scale);
  scale->needs(center);
  auto* box =
      g->add_option("--box", a.box, "person box x,y,w,h (crop: its centre, side 1.25·max(w,h))")
          ->delimiter(',')
          ->expected(4);
  auto* boxes = g->add_option("--boxes", a.boxes,
                              "JSON {\"image.jpg\": [[x,y,w,h], ...], \"video.mp4#FRAME\": ...}")
                    ->check(CLI::ExistingFile);
  auto* whole = g->add_flag("--whole-image", a.whole_image, "the whole image is the crop");
  box->excludes(center)->excludes(boxes)->excludes(whole);
  center->excludes(boxes)->excludes(whole);
  boxes->excludes(whole);
  g->add_option("--max-people", a.max_people, "detector: at most this many people per image")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
}

PersonFinder::PersonFinder(const PersonArgs& args) : args_(args) {
  if (!args_.center.empty()) {
    // The crop square as a box: the same bounds as --box (finite, within the coordinate limit).
    const double side = 200 * args_.scale;
    TORCH_CHECK(args_.scale > 0 && side <= limits::kMaxCoordinate, "--scale ", args_.scale,
                " is not a crop scale from 0 to ", limits::kMaxCoordinate / 200);
    data::checked_box({args_.center[0], args_.center[1], side, side}, "--center X,Y with --scale");
  }
  if (!args_.box.empty()) data::checked_box(args_.box, "--box");
  if (args_.boxes.empty()) return;
  std::ifstream in(args_.boxes);
  TORCH_CHECK(in, "cannot open --boxes file ", args_.boxes);
  const std::string source = "--boxes file " + args_.boxes;
  boxes_ = data::boxes_file_from_json(data::parse_json(in, source), source);
}

std::vector<infer::PersonCrop> PersonFinder::find(const std::string& key,
                                                  const cv::Mat& rgb) const {
  using infer::PersonSource;
  if (!args_.center.empty()) {
    data::CropParams p;
    p.center = {args_.center[0], args_.center[1]};
    p.scale = args_.scale;
    return {{p, PersonSource::kCenterScale, {}, 0}};
  }
  if (!args_.box.empty()) {
    const cv::Rect2d b(args_.box[0], args_.box[1], args_.box[2], args_.box[3]);
    return {{infer::crop_of_box(b), PersonSource::kBox, b, 0}};
  }
  const auto whole = [&](PersonSource why) {
    return std::vector<infer::PersonCrop>{{infer::crop_of_image(rgb.size()), why, {}, 0}};
  };
  if (args_.whole_image) return whole(PersonSource::kWholeImage);
  if (const auto it = boxes_.find(key); it != boxes_.end()) {
    std::vector<infer::PersonCrop> people;
    for (const auto& b : it->second)
      people.push_back({infer::crop_of_box(b), PersonSource::kBoxesFile, b, 0});
    return people;
  }
  auto people = infer::detect_people(rgb, args_.max_people);
  return people.empty() ? whole(PersonSource::kNoDetection) : people;
}

}  // namespace hg::cli
