#include "hg/cli/cli.h"

#include <malloc.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

namespace hg::cli {

CLI::Option* add_predictor_options(CLI::App& cmd, PredictorArgs& a, bool weights_optional) {
  auto* weights =
      cmd.add_option("--weights,-w", a.weights, "checkpoint (native, posenet or bearpaw)")
          ->required(!weights_optional)
          ->check(CLI::ExistingFile);
  cmd.add_option("--backend", a.backend,
                 "network runtime: auto (the oneDNN engine on CPU, LibTorch on CUDA), torch or "
                 "engine")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "torch", "engine"}));
  cmd.add_option("--device", a.device, "cpu, cuda or cuda:N")->capture_default_str();
  cmd.add_option("--precision", a.precision, "engine arithmetic: f32 or bf16 (AVX512-BF16 CPUs)")
      ->capture_default_str();
  cmd.add_option("--algorithm", a.algorithm,
                 "engine 3×3 convolutions: auto (fastest per layer), direct or winograd")
      ->capture_default_str();
  cmd.add_option("--size", a.size, "network input side (default: the checkpoint's, else 256)")
      ->check(CLI::NonNegativeNumber);
  cmd.add_flag("--no-flip", a.no_flip,
               "no flip test (faster; by default the heatmaps of the "
               "crop and of its mirror are averaged)");
  cmd.add_flag("--dark", a.dark,
               "DARK decoding (smoothed log-heatmap, Newton step at the peak) instead of the "
               "original quarter-pixel step toward the higher neighbour");
  cmd.add_option("--batch", a.batch, "crops per network call")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  return weights;
}

infer::Predictor make_predictor(const PredictorArgs& a) {
  const auto device = parse_device(a.device);
  // Loading and the engine build free hundreds of weight-sized blocks while allocating others.
  // glibc's adaptive mmap threshold would move blocks of that size into its heap, where freed
  // ones stay resident: 100 MB more peak memory for the 8-stack model (measured). A fixed
  // threshold (its initial value) hands them back to the system when freed.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  auto loaded = io::load_model(a.weights);
  auto options = infer::options_for_model(loaded);
  if (a.size > 0) options.input_size = a.size;
  options.flip = !a.no_flip;
  if (a.dark) options.decoder = infer::PeakDecoder::kDark;
  options.batch = a.batch;
  const int64_t multiple = 4 << loaded.model->options.depth();
  TORCH_CHECK(options.input_size % multiple == 0, "--size ", options.input_size,
              " does not fit the model of ", a.weights, ": it must be a multiple of ", multiple);
  auto joints = infer::joints_for_model(loaded.model->options.joints());
  const bool use_engine = a.backend == "engine" || (a.backend == "auto" && device.is_cpu());
  TORCH_CHECK(!use_engine || device.is_cpu(), "--backend engine runs on the CPU, not on ", a.device,
              ": use --backend torch");
  auto backend = use_engine ? infer::engine_backend(loaded.model, options.input_size, a.precision,
                                                    a.algorithm, torch::get_num_threads())
                            : infer::torch_backend(loaded.model, device);
  return infer::Predictor(std::move(backend), std::move(joints), options);
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
  TORCH_CHECK(args_.center.empty() || args_.scale > 0, "--scale must be > 0, got ", args_.scale);
  TORCH_CHECK(args_.box.empty() || (args_.box[2] > 0 && args_.box[3] > 0),
              "--box needs a positive width and height");
  if (args_.boxes.empty()) return;
  std::ifstream in(args_.boxes);
  TORCH_CHECK(in, "cannot open --boxes file ", args_.boxes);
  try {
    boxes_ = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    TORCH_CHECK(false, "cannot read --boxes file ", args_.boxes, ": not valid JSON: ", e.what());
  }
  TORCH_CHECK(boxes_.is_object(), "cannot read --boxes file ", args_.boxes,
              ": expected an object mapping image names to lists of [x, y, w, h]");
  for (const auto& [key, list] : boxes_.items()) {
    TORCH_CHECK(list.is_array(), "--boxes file ", args_.boxes, ": '", key,
                "' must map to a list of [x, y, w, h]");
    for (const auto& b : list)
      TORCH_CHECK(b.is_array() && b.size() == 4 && b[0].is_number() && b[1].is_number() &&
                      b[2].is_number() && b[3].is_number() && b[2].get<double>() > 0 &&
                      b[3].get<double>() > 0,
                  "--boxes file ", args_.boxes, ": '", key, "' has the box ", b.dump(),
                  "; a box is [x, y, w, h] with w, h > 0");
  }
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
  if (boxes_.contains(key)) {
    std::vector<infer::PersonCrop> people;
    for (const auto& v : boxes_[key]) {
      const cv::Rect2d b(v[0].get<double>(), v[1].get<double>(), v[2].get<double>(),
                         v[3].get<double>());
      people.push_back({infer::crop_of_box(b), PersonSource::kBoxesFile, b, 0});
    }
    return people;
  }
  auto people = infer::detect_people(rgb, args_.max_people);
  return people.empty() ? whole(PersonSource::kNoDetection) : people;
}

}  // namespace hg::cli
